"""A scripted STOMP server for the blocking client's tests: a loopback
listener whose one connection the test drives by hand through a
:class:`~stomp_proto.ServerConnection` (what to answer, when to beat)."""

from __future__ import annotations

import socket
import threading

from stomp_proto import NEED_DATA, PAUSED, Connect, Event, Heartbeat, ServerConnection

from .conftest import HOST


class ScriptedServer:
    def __init__(self, *, heart_beat: tuple[int, int] = (0, 0)) -> None:
        self.listener = socket.create_server((HOST, 0))
        self.port: int = self.listener.getsockname()[1]
        self.conn = ServerConnection(heart_beat=heart_beat)
        self.sock: socket.socket | None = None
        self.beats = 0
        self._accepted = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock, _ = self.listener.accept()
        self.sock.settimeout(5)
        self._accepted.set()

    def next_event(self, timeout: float = 5) -> Event:
        """The next frame event from the client (heart-beats are counted, not returned)."""
        assert self._accepted.wait(timeout), "the client did not connect"
        assert self.sock is not None
        self.sock.settimeout(timeout)
        while True:
            event = self.conn.next_event()
            if isinstance(event, Heartbeat):
                self.beats += 1
                continue
            if event is NEED_DATA or event is PAUSED:
                self.conn.receive_data(self.sock.recv(65536))
                continue
            assert isinstance(event, Event)
            return event

    def wait_beat(self, timeout: float) -> bool:
        """Read until one more heart-beat arrives; False if none within ``timeout``."""
        assert self.sock is not None
        start = self.beats
        self.sock.settimeout(timeout)
        try:
            while self.beats == start:
                event = self.conn.next_event()
                if isinstance(event, Heartbeat):
                    self.beats += 1
                elif event is NEED_DATA:
                    self.conn.receive_data(self.sock.recv(65536))
                else:
                    raise AssertionError(f"expected a heart-beat, got {event!r}")
        except TimeoutError:
            return False
        return True

    def accept_connect(self) -> Connect:
        connect = self.next_event()
        assert isinstance(connect, Connect)
        self.send(self.conn.accept())
        return connect

    def send(self, event: Event) -> None:
        assert self.sock is not None
        self.sock.sendall(self.conn.send(event))

    def send_raw(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.listener.close()
