"""The machine's floor for the latency scenarios: ``python -m benchmarks.broker.floor PORT``.

A bare asyncio server, ~50 lines, that answers CONNECT with CONNECTED and a
receipted SUBSCRIBE with its RECEIPT, and forwards the bytes of every SEND,
unparsed, to the last subscriber (the latency scenario's consumer only counts
frames and reads the sequence number and send time in each body). It does
the least a Python process can do per message: one wake-up, one read, one
write. What it measures under the same load generator, side by side with the
brokers, is the tail this machine adds by itself (scheduling, wake-ups, the
generator), which no broker on it can go below.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from tests.interop.ourbroker import OurBroker

_RECEIPT = re.compile(rb"\nreceipt:([^\n]*)")


class _Forwarder(asyncio.Protocol):
    subscriber: asyncio.Transport | None = None  # shared: the last SUBSCRIBE wins

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""
        self.connected = False

    def data_received(self, data: bytes) -> None:
        if self.connected and data.startswith(b"SEND") and data.endswith(b"\0"):
            if _Forwarder.subscriber is not None:  # the hot path: whole SENDs, forwarded
                _Forwarder.subscriber.write(data)
            return
        self.buffer += data
        while b"\0" in self.buffer:
            frame, _, self.buffer = self.buffer.partition(b"\0")
            frame = frame.lstrip(b"\r\n")
            if not self.connected:
                self.connected = True
                self.transport.write(b"CONNECTED\nversion:1.2\n\n\0")
                continue
            if frame.startswith(b"SEND"):
                if _Forwarder.subscriber is not None:
                    _Forwarder.subscriber.write(frame + b"\0")
                continue
            if frame.startswith(b"SUBSCRIBE"):
                _Forwarder.subscriber = self.transport
            receipt = _RECEIPT.search(frame)
            if receipt:
                self.transport.write(b"RECEIPT\nreceipt-id:" + receipt.group(1) + b"\n\n\0")
            if frame.startswith(b"DISCONNECT"):
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if _Forwarder.subscriber is self.transport:
            _Forwarder.subscriber = None


async def _serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Forwarder, "127.0.0.1", port)
    await server.serve_forever()


class FloorServer(OurBroker):
    """The floor as a broker fixture: started and stopped like ours (TCP only)."""

    name = "floor"

    def __init__(self) -> None:
        super().__init__()
        self.ws_port = None  # type: ignore[assignment]

    def command(self) -> list[str]:
        return [sys.executable, "-m", "benchmarks.broker.floor", str(self.stomp_port)]

    def _spawn(self) -> None:
        import os

        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self._popen(self.command(), env=env, log=self.log_file)


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1])))
