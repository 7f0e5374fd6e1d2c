"""Drive stomp_proto.ClientConnection over workload (a): receive_data + next_event until NEED_DATA.

The connection is brought to CONNECTED without a server (send CONNECT, receive a CONNECTED frame,
take the Connected event) and subscribed with id "0", the subscription every workload (a)
MESSAGE frame names. That setup is part of each timed run; it costs microseconds against the
~0.2 s of the run.
"""

from __future__ import annotations

from typing import Any


class EventsDriver:
    how = (
        "ClientConnection(): send(Connect), receive_data(CONNECTED), next_event(), "
        "send(Subscribe(id='0')); then per chunk receive_data(chunk) and next_event() "
        "until NEED_DATA"
    )

    def __init__(self, mod: Any) -> None:
        self.mod = mod
        self.ClientConnection = mod.ClientConnection
        self.NEED_DATA = mod.NEED_DATA
        self.PAUSED = getattr(mod, "PAUSED", None)
        self._connected()  # fail early (as "missing") if the API differs

    def _connected(self) -> Any:
        m = self.mod
        conn = self.ClientConnection()
        conn.send(m.Connect(host="localhost"))
        conn.receive_data(b"CONNECTED\nversion:1.2\n\n\x00")
        event = conn.next_event()
        if not isinstance(event, m.Connected):
            raise RuntimeError(f"expected Connected, got {event!r}")
        conn.send(m.Subscribe(destination="/topic/price.stock.*", id="0"))
        return conn

    def count(self, chunks: list[bytes]) -> int:
        conn = self._connected()
        receive_data, next_event = conn.receive_data, conn.next_event
        need_data, paused = self.NEED_DATA, self.PAUSED
        n = 0
        for chunk in chunks:
            receive_data(chunk)
            while (event := next_event()) is not need_data:
                if event is paused:
                    raise RuntimeError("the connection paused")
                n += 1
        return n

    def check(self, chunks: list[bytes], expected: list) -> str | None:
        """Return why the events differ from one Message per expected frame, or None."""
        conn = self._connected()
        events = []
        for chunk in chunks:
            conn.receive_data(chunk)
            while (event := conn.next_event()) is not self.NEED_DATA:
                if event is self.PAUSED:
                    return f"PAUSED after {len(events)} events"
                events.append(event)
        Message = self.mod.Message
        for i, (event, (_, headers, body)) in enumerate(zip(events, expected, strict=False)):
            if not isinstance(event, Message):
                return f"event {i}: {type(event).__name__}, expected Message"
            if bytes(event.body) != body:
                return f"event {i}: body differs"
            got = tuple(getattr(event, "headers", ()))
            if got and got != headers:
                return f"event {i}: headers {got[:2]!r}..., expected {headers[:2]!r}..."
            if getattr(event, "message_id", headers[1][1]) != headers[1][1]:
                return f"event {i}: message_id {event.message_id!r}, expected {headers[1][1]!r}"
        if len(events) != len(expected):
            return f"{len(events)} events, expected {len(expected)}"
        return None
