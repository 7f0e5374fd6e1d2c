"""Real brokers as plain processes, for the interop tests.

RabbitMQ 3.10 (STOMP, Web-STOMP, optionally STOMP over TLS) and ActiveMQ
Classic 5.17, both from Debian (``.ci/install-peers``), each started in a
fresh temporary directory on free loopback ports, as root and without an
init system (see ../shared/interop.md for where the recipes come from).

A broker counts as started when a real STOMP CONNECT gets CONNECTED, not
when its port opens. It is stopped by the PIDs this module started (SIGTERM,
then SIGKILL of the process group it leads), never by name.

Every broker process is started by one thread that lives as long as the test
process (:class:`_Spawner`): the processes ask the kernel for SIGTERM when
their parent dies, and that "parent" is the *thread* that forked them.

``STOMP_INTEROP_KEEP_LOGS=DIR`` keeps a copy of each broker's directory (its
configuration and logs, without the message stores) under ``DIR`` when the
broker is closed, to read after the run.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import datetime
import ipaddress
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from queue import SimpleQueue

from stomp_proto import Connect

from .blocking import BlockingStompClient, StompError

HOST = "127.0.0.1"

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
RABBITMQ_PLUGINS = ("rabbitmq_stomp", "rabbitmq_web_stomp")
ACTIVEMQ_HOME = Path("/usr/share/activemq")
ACTIVEMQ_JAR = ACTIVEMQ_HOME / "bin" / "activemq.jar"

# What /usr/bin/activemq passes to a Java 9+ VM.
_ACTIVEMQ_JAVA_FLAGS = (
    "--add-reads=java.xml=java.logging",
    "--add-opens=java.base/java.security=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.naming/javax.naming.spi=ALL-UNNAMED",
    "--add-opens=java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-exports=java.base/sun.net.www.protocol.http=ALL-UNNAMED",
    "--add-exports=java.base/sun.net.www.protocol.https=ALL-UNNAMED",
    "--add-exports=java.base/sun.net.www.protocol.jar=ALL-UNNAMED",
    "--add-exports=jdk.xml.dom/org.w3c.dom.html=ALL-UNNAMED",
    "--add-exports=jdk.naming.rmi/com.sun.jndi.url.rmi=ALL-UNNAMED",
)


def _load_prctl() -> Callable[..., int] | None:
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):  # not Linux
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the test process dies (even by
    SIGKILL), so that a killed pytest run does not leave brokers behind.

    The kernel sends it when the *thread* that forked the child exits
    (prctl(2), PR_SET_PDEATHSIG), so only :class:`_Spawner`'s thread forks.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


_SpawnJob = tuple[Future[subprocess.Popen[bytes]], Callable[[], subprocess.Popen[bytes]]]


class _Spawner:
    """Starts every broker process from one daemon thread, which ends only
    with the test process.

    A broker restarted from a worker thread (``anyio.to_thread.run_sync``:
    asyncio's workers end with the test's event loop, trio's cached threads
    after 10 s idle) used to get the parent-death SIGTERM when that worker
    ended, in the middle of whatever test ran then.
    """

    def __init__(self) -> None:
        self._jobs: SimpleQueue[_SpawnJob] = SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        """Call ``start`` (which forks) on the spawner thread; return its result."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="interop broker spawner", daemon=True
                )
                self._thread.start()
        done: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((done, start))
        return done.result()

    def _serve(self) -> None:
        while True:
            done, start = self._jobs.get()
            try:
                done.set_result(start())
            except BaseException as exc:  # handed to the caller, which raises it
                done.set_exception(exc)


_SPAWNER = _Spawner()


class BrokerNotInstalled(Exception):
    """The broker's Debian package (or Java, or epmd) is missing."""


class BrokerStartError(Exception):
    """The broker did not come up; the message ends with its log tail."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


_DIR_PREFIX = "stomp-interop-"
_OWNER_FILE = "owner.pid"


def _sweep_stale_dirs() -> None:
    """Remove broker directories left by test processes that were killed
    (their brokers died with them: see :func:`_die_with_parent`)."""
    for path in Path(tempfile.gettempdir()).glob(_DIR_PREFIX + "*"):
        try:
            owner = int((path / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            continue


def _program(proc: subprocess.Popen[bytes]) -> str:
    args = proc.args
    first = args[0] if isinstance(args, (list, tuple)) else args
    return Path(os.fsdecode(first)).name  # type: ignore[arg-type]


_ERROR_LINE = re.compile(r"\bERROR\b|\[error\]|Caused by:|Exception:|exited with|terminated")


def _tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines, after the first few error-looking lines above
    them (the cause is often further up than a stack trace's tail)."""
    try:
        all_lines = path.read_text("utf-8", "replace").splitlines()
    except OSError:
        return ""
    head, tail = all_lines[:-lines], all_lines[-lines:]
    errors = [line[:300] for line in head if _ERROR_LINE.search(line)][:8]
    if errors:
        return "\n".join(["[first error lines above the tail:]", *errors, "[...]", *tail])
    return "\n".join(tail)


class Broker:
    """A broker process tree in its own temporary directory.

    Attributes every broker has: ``host``, ``stomp_port``, ``ws_port`` (None
    without WebSocket), ``tls_port`` and ``ca_file`` (None without TLS),
    ``login``, ``passcode``, ``vhost`` (the CONNECT ``host`` header to send),
    and ``startup_times`` (seconds from spawn to CONNECTED, per start).
    """

    name = "broker"
    login = "guest"
    passcode = "guest"
    vhost = "/"
    start_timeout = 90.0
    stop_timeout = 20.0

    def __init__(self) -> None:
        reason = self.missing_reason()
        if reason is not None:  # before any temporary directory exists
            raise BrokerNotInstalled(reason)
        self.host = HOST
        _sweep_stale_dirs()
        self.dir = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX + f"{self.name}-"))
        (self.dir / _OWNER_FILE).write_text(f"{os.getpid()}\n")
        self.stomp_port = 0
        self.ws_port: int | None = None
        self.tls_port: int | None = None
        self.ca_file: Path | None = None
        self.startup_times: list[float] = []
        self.unexpected_exits: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[Path] = []
        self._closed = False

    # -- what subclasses provide ---------------------------------------------

    @classmethod
    def missing_reason(cls) -> str | None:
        """Why this broker cannot run here (not installed), or None."""
        raise NotImplementedError

    def _spawn(self) -> None:
        """Start the processes (via :meth:`_popen`); the configuration is written."""
        raise NotImplementedError

    def _log_files(self) -> Sequence[Path]:
        return self._logs

    # -- lifecycle -----------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self._procs) and all(p.poll() is None for p in self._procs)

    def start(self) -> None:
        """Start the broker and wait until a STOMP CONNECT gets CONNECTED."""
        if self._closed:
            raise RuntimeError(f"{self.name}: closed")
        if self._procs:
            raise RuntimeError(f"{self.name}: already started")
        began = time.monotonic()
        try:
            self._spawn()
            self._wait_ready(began + self.start_timeout)
        except BaseException as exc:
            self.stop()  # first, so that the logs are complete
            if not isinstance(exc, Exception):
                raise
            what = str(exc) if isinstance(exc, BrokerStartError) else repr(exc)
            raise BrokerStartError(
                f"{self.name} ({self.dir}) did not start: {what}\n"
                f"--- log tail ---\n{self.log_tail()}"
            ) from exc
        self.startup_times.append(time.monotonic() - began)

    def stop(self) -> None:
        """Stop every process this broker started (last started first).

        A process found already dead is recorded in ``unexpected_exits``.
        """
        while self._procs:
            proc = self._procs.pop()
            if proc.poll() is not None:
                self.unexpected_exits.append(
                    f"{_program(proc)} (pid {proc.pid}) had already exited with "
                    f"{proc.returncode} when stopped at {time.strftime('%H:%M:%S')}"
                )
            self._terminate(proc)

    def restart(self) -> None:
        """Stop, then start again on the same ports with the same data directory."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop, and remove the temporary directory."""
        try:
            self.stop()
        finally:
            self._closed = True
            keep = os.environ.get("STOMP_INTEROP_KEEP_LOGS")
            if keep:
                with contextlib.suppress(OSError):
                    shutil.copytree(
                        self.dir,
                        Path(keep) / self.dir.name,
                        ignore=shutil.ignore_patterns("mnesia", "kahadb"),
                        dirs_exist_ok=True,
                    )
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_tail(self, lines: int = 60) -> str:
        parts = []
        for path in self._log_files():
            text = _tail(path, lines)
            if text:
                parts.append(f"==> {path} <==\n{text}")
        return "\n".join(parts) or "(no log output)"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.stomp_port} in {self.dir}>"

    # -- helpers -------------------------------------------------------------

    def _popen(
        self, args: Sequence[str], *, env: dict[str, str], log: Path, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        if log not in self._logs:
            self._logs.append(log)
        with log.open("ab") as out:
            out.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(args)}\n".encode())
            out.flush()
            proc = _SPAWNER.run(
                lambda: subprocess.Popen(
                    list(args),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd or self.dir,
                    start_new_session=True,  # its own process group, led by proc.pid
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 - async-signal-safe: one syscall
                )
            )
        self._procs.append(proc)
        return proc

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        pgid = proc.pid  # start_new_session: the child leads its own group
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                proc.wait(10)
        # Helpers left in the group (erl_child_setup, inet_gethost) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def connect_client(
        self,
        *,
        accept_version: tuple[str, ...] = ("1.0", "1.1", "1.2"),
        heart_beat: tuple[int, int] = (0, 0),
        timeout: float = 10.0,
        port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> BlockingStompClient:
        """A blocking client, CONNECTED with this broker's credentials."""
        client = BlockingStompClient.open(
            self.host,
            self.stomp_port if port is None else port,
            timeout=timeout,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
        )
        try:
            client.connect(
                Connect(
                    accept_version=accept_version,
                    host=self.vhost,
                    login=self.login,
                    passcode=self.passcode,
                    heart_beat=heart_beat,
                )
            )
        except BaseException:
            client.close()
            raise
        return client

    def _probe(self) -> None:
        """One readiness attempt; raises OSError/TimeoutError/StompError if not ready."""
        self.connect_client(timeout=3.0).disconnect(timeout=3.0)

    def _wait_ready(self, deadline: float) -> None:
        last: BaseException | None = None
        while True:
            for proc in self._procs:
                if proc.poll() is not None:
                    raise BrokerStartError(
                        f"{_program(proc)} (pid {proc.pid}) exited with {proc.returncode} during startup"
                    )
            try:
                self._probe()
                return
            except (OSError, TimeoutError, StompError, AssertionError) as exc:
                last = exc
            if time.monotonic() > deadline:
                raise BrokerStartError(
                    f"no CONNECTED within {self.start_timeout:.0f} s (last attempt: {last!r})"
                )
            time.sleep(0.25)


# -- TLS material ------------------------------------------------------------


def make_tls_files(directory: Path, hostname: str = "localhost") -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``hostname`` and 127.0.0.1 signed by it.

    Returns the paths of (CA certificate, server certificate, server key), PEM.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    valid_from, valid_to = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stomp-proto interop test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca_file = directory / "ca.pem"
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


def client_tls_context(ca_file: Path) -> ssl.SSLContext:
    """Verifies the broker's certificate (and host name) against the test CA only."""
    return ssl.create_default_context(cafile=str(ca_file))


# -- RabbitMQ ----------------------------------------------------------------


class RabbitMQ(Broker):
    """RabbitMQ 3.10 with rabbitmq_stomp and rabbitmq_web_stomp (path ``/ws``).

    ``tls=True`` adds a STOMP-over-TLS listener (``tls_port``) with a server
    certificate for localhost / 127.0.0.1 signed by a CA made here
    (``ca_file``). A private epmd on its own port runs alongside the node.
    """

    name = "rabbitmq"
    ws_path = "/ws"

    def __init__(self, *, tls: bool = False) -> None:
        super().__init__()
        self.tls = tls
        ports = free_ports(6 if tls else 5)
        self.epmd_port, self.amqp_port, self.dist_port, self.stomp_port, ws_port = ports[:5]
        self.ws_port = ws_port
        self.nodename = f"stomp_interop_{os.getpid()}_{self.stomp_port}@localhost"
        if tls:
            self.tls_port = ports[5]
            self.ca_file, self._cert_file, self._key_file = make_tls_files(self.dir / "tls")
        self._write_config()

    @classmethod
    def missing_reason(cls) -> str | None:
        if not RABBITMQ_SERVER.exists():
            return (
                f"RabbitMQ is not installed ({RABBITMQ_SERVER} missing; "
                "run `bash .ci/install-peers`)"
            )
        plugins_dirs = list(Path("/usr/lib/rabbitmq/lib").glob("rabbitmq_server-*/plugins"))
        for plugin in RABBITMQ_PLUGINS:
            if not any(any(d.glob(f"{plugin}-*")) for d in plugins_dirs):
                return f"RabbitMQ plugin {plugin} not found under /usr/lib/rabbitmq/lib"
        if shutil.which("epmd") is None:
            return "epmd (Erlang) not found on PATH"
        return None

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port}{self.ws_path}"

    def _write_config(self) -> None:
        d = self.dir
        for sub in ("home", "mnesia", "log"):
            (d / sub).mkdir(exist_ok=True)
        (d / "rabbitmq-env.conf").write_text("")
        (d / "enabled_plugins").write_text(f"[{','.join(RABBITMQ_PLUGINS)}].\n")
        lines = [
            f"listeners.tcp.default = {HOST}:{self.amqp_port}",
            f"stomp.listeners.tcp.1 = {HOST}:{self.stomp_port}",
            f"web_stomp.tcp.ip = {HOST}",
            f"web_stomp.tcp.port = {self.ws_port}",
            "loopback_users.guest = true",
            "disk_free_limit.absolute = 50MB",
            "log.console = false",
            "log.file.level = info",
        ]
        if self.tls:
            lines += [
                f"stomp.listeners.ssl.1 = {HOST}:{self.tls_port}",
                f"ssl_options.cacertfile = {self.ca_file}",
                f"ssl_options.certfile = {self._cert_file}",
                f"ssl_options.keyfile = {self._key_file}",
                "ssl_options.verify = verify_none",
                "ssl_options.fail_if_no_peer_cert = false",
            ]
        (d / "rabbitmq.conf").write_text("\n".join(lines) + "\n")

    def _env(self) -> dict[str, str]:
        d = self.dir
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RABBITMQ_", "ERL_")) and k != "NOTIFY_SOCKET"
        }
        env.update(
            HOME=str(d / "home"),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS=HOST,
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS=HOST,
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONF_ENV_FILE=str(d / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_PID_FILE=str(d / "beam.pid"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return env

    def _spawn(self) -> None:
        env = self._env()
        epmd = shutil.which("epmd") or "epmd"
        # Our own epmd in the foreground, so that it is a PID we started; the
        # node finds it through ERL_EPMD_PORT and does not spawn another.
        proc = self._popen(
            [epmd, "-port", str(self.epmd_port), "-address", HOST],
            env=env,
            log=self.dir / "epmd.out",
        )
        _wait_port(self.epmd_port, proc, 10.0)
        self._popen([str(RABBITMQ_SERVER)], env=env, log=self.dir / "rabbitmq-server.out")

    def _log_files(self) -> Sequence[Path]:
        return [*self._logs, self.dir / "log" / f"{self.nodename}.log"]

    def _probe(self) -> None:
        super()._probe()
        if self.ws_port is not None:
            _probe_websocket(self.host, self.ws_port, self.ws_path)
        if self.tls_port is not None and self.ca_file is not None:
            self.connect_client(
                timeout=3.0,
                port=self.tls_port,
                ssl_context=client_tls_context(self.ca_file),
                server_hostname="localhost",
            ).disconnect(timeout=3.0)


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BrokerStartError(f"{_program(proc)} exited with {proc.returncode}")
        try:
            socket.create_connection((HOST, port), timeout=1.0).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _probe_websocket(host: str, port: int, path: str) -> None:
    """The WebSocket upgrade on ``path`` is answered with 101 (Web-STOMP is up)."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: v12.stomp\r\n\r\n"
    )
    with socket.create_connection((host, port), timeout=3.0) as sock:
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    status = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status + b" ":
        raise OSError(f"Web-STOMP upgrade on {path} answered {status!r}")


# -- ActiveMQ ----------------------------------------------------------------

_ACTIVEMQ_XML = """\
<beans
  xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core"
          brokerName="stomp-interop"
          useJmx="false"
          persistent="true"
          schedulerSupport="false"
          dataDirectory="{data}">
    <persistenceAdapter>
      <kahaDB directory="{data}/kahadb"/>
    </persistenceAdapter>
    <systemUsage>
      <systemUsage>
        <memoryUsage><memoryUsage limit="64 mb"/></memoryUsage>
        <storeUsage><storeUsage limit="1 gb"/></storeUsage>
        <tempUsage><tempUsage limit="256 mb"/></tempUsage>
      </systemUsage>
    </systemUsage>
    <transportConnectors>
      <transportConnector name="openwire" uri="tcp://{host}:{openwire_port}"/>
      <transportConnector name="stomp" uri="stomp+nio://{host}:{stomp_port}"/>
    </transportConnectors>
  </broker>
</beans>
"""

_LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO, console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{HH:mm:ss,SSS} %-5p [%t] %c{1} - %m%n
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.logger.org.apache.activemq.spring=WARN
"""


class ActiveMQ(Broker):
    """ActiveMQ Classic 5.17 with a ``stomp+nio`` connector (TCP only: Debian's
    build has no WebSocket transport). Any login is accepted."""

    name = "activemq"
    login = "admin"
    passcode = "admin"
    vhost = "localhost"

    def __init__(self) -> None:
        super().__init__()
        self.openwire_port, self.stomp_port = free_ports(2)
        self._write_config()

    @classmethod
    def missing_reason(cls) -> str | None:
        if not ACTIVEMQ_JAR.exists():
            return (
                f"ActiveMQ is not installed ({ACTIVEMQ_JAR} missing; run `bash .ci/install-peers`)"
            )
        if shutil.which("java") is None:
            return "java not found on PATH (needed by ActiveMQ)"
        return None

    def _write_config(self) -> None:
        conf = self.dir / "conf"
        for sub in ("conf", "data", "tmp"):
            (self.dir / sub).mkdir(exist_ok=True)
        (conf / "activemq.xml").write_text(
            _ACTIVEMQ_XML.format(
                data=self.dir / "data",
                host=HOST,
                openwire_port=self.openwire_port,
                stomp_port=self.stomp_port,
            )
        )
        (conf / "log4j.properties").write_text(_LOG4J_PROPERTIES)

    def _spawn(self) -> None:
        d, conf = self.dir, self.dir / "conf"
        java = shutil.which("java") or "java"
        args = [
            java,
            "-Xms64M",
            "-Xmx512M",
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            *_ACTIVEMQ_JAVA_FLAGS,
            f"-Dlog4j.configuration=file:{conf / 'log4j.properties'}",
            f"-Dactivemq.home={ACTIVEMQ_HOME}",
            f"-Dactivemq.base={d}",
            f"-Dactivemq.conf={conf}",
            f"-Dactivemq.data={d / 'data'}",
            f"-Dactivemq.classpath={conf}",
            f"-Djava.io.tmpdir={d / 'tmp'}",
            "-jar",
            str(ACTIVEMQ_JAR),
            "start",
            f"xbean:file:{conf / 'activemq.xml'}",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVEMQ_")}
        self._popen(args, env=env, log=d / "activemq.out")
