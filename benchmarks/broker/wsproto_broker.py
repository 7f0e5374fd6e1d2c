"""Our broker with wsproto framing its open WebSocket connections, for ``wslayer --end-to-end``.

``python -m benchmarks.broker.wsproto_broker ARGS`` is ``python -m
stomp_proto.broker ARGS`` with one change: once the handshake is answered, a
WebSocket connection is framed by wsproto's data-phase ``Connection`` instead
of websockets' sans-IO ``Protocol``. Everything else is the broker's own
code: the same batches (one socket write of one message per frame), the
same reads handed over in one piece, so the two runs differ only in the
library that parses, unmasks and frames. Issue 14 compared the two this way
before keeping websockets; this is the wsproto side of that comparison, not
a supported configuration.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage

from stomp_proto._adapter import _websocket
from stomp_proto._adapter._wsstream import MESSAGE_TOO_BIG, PROTOCOL_ERROR


class WsprotoServerTransport(_websocket.WebSocketServerTransport):
    """The server's WebSocket stream with wsproto doing the framing."""

    __slots__ = ("_out", "_size", "_wsp")

    def __init__(self, *args: object, initial: bytes = b"", **kwargs: object) -> None:
        self._wsp = Connection(ConnectionType.SERVER)
        self._out: list[bytes] = []
        self._size = 0
        super().__init__(*args, initial=initial, **kwargs)  # type: ignore[arg-type]

    def _absorb(self, data: bytes) -> None:
        wsp = self._wsp
        wsp.receive_data(data)
        pending = self._pending
        for event in wsp.events():
            if isinstance(event, Message):
                if self._done:
                    continue
                data = event.data
                chunk = bytes(data) if isinstance(event, BytesMessage) else data.encode()
                self._size += len(chunk)
                if self._size > self.max_message_size:
                    self._failed(MESSAGE_TOO_BIG)
                    continue
                if event.message_finished:
                    self._size = 0
                if chunk:
                    pending.append(chunk)
            elif isinstance(event, Ping):
                self._out.append(wsp.send(event.response()))
            elif isinstance(event, CloseConnection):
                self._close_seen = True
                if not self._done:
                    self._done = True
                    if wsp.state is ConnectionState.REMOTE_CLOSING:
                        self.close_code = event.code
                        self._out.append(wsp.send(event.response()))
                    else:  # bad framing found by wsproto
                        self._failed(event.code or PROTOCOL_ERROR)

    async def _flush(self) -> None:
        if self._out:
            data, self._out = b"".join(self._out), []
            await self._write(data)

    async def send_frames(
        self, frames: Sequence[bytes], progress: Callable[[], None] | None = None
    ) -> None:
        if self._done or self._wsp.state is not ConnectionState.OPEN:
            return
        send = self._wsp.send
        parts = []
        for frame in frames:
            try:
                parts.append(send(TextMessage(data=frame.decode())))
            except UnicodeDecodeError:
                parts.append(send(BytesMessage(data=frame)))
        await self._write(b"".join(parts), progress)


def main(argv: Sequence[str] | None = None) -> int:
    from stomp_proto.broker.__main__ import main as broker_main

    _websocket.WebSocketServerTransport = WsprotoServerTransport  # type: ignore[misc]
    return broker_main(argv)


if __name__ == "__main__":
    sys.exit(main())
