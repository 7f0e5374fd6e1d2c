"""Shared test helpers: three-way parsing and an in-memory connection pair."""

from __future__ import annotations

import re

from stomp_proto import (
    NEED_DATA,
    PAUSED,
    ClientConnection,
    Connect,
    ConnectionClosed,
    Event,
    Frame,
    FrameParser,
    Heartbeat,
    RemoteProtocolError,
    ServerConnection,
)

Parsed = Frame | Heartbeat


def parse_whole(data: bytes, version: str = "1.2", **limits: int) -> list[Parsed]:
    parser = FrameParser(version, **limits)
    out = parser.feed(data)
    out += parser.feed(b"")
    return out


def parse_bytewise(data: bytes, version: str = "1.2", **limits: int) -> list[Parsed]:
    parser = FrameParser(version, **limits)
    out: list[Parsed] = []
    for i in range(len(data)):
        out += parser.feed(data[i : i + 1])
    out += parser.feed(b"")
    return out


def parse(data: bytes, version: str = "1.2", **limits: int) -> list[Parsed]:
    """Parse ``data`` whole and one byte at a time; both must agree (h11's test_io)."""
    whole = parse_whole(data, version, **limits)
    assert parse_bytewise(data, version, **limits) == whole
    return whole


def parse_error(data: bytes, version: str = "1.2", **limits: int) -> RemoteProtocolError:
    """Both ways of feeding ``data`` must raise; return the error of the whole feed."""
    errors = []
    for how in (parse_whole, parse_bytewise):
        try:
            how(data, version, **limits)
        except RemoteProtocolError as exc:
            errors.append(exc)
        else:
            raise AssertionError(f"{how.__name__} accepted {data!r}")
    assert same_error(errors[0].message, errors[1].message), errors
    return errors[0]


# A command line is refused at its first impossible byte, so the command text
# an "unknown command" error shows is what had arrived by then: the rest of
# the message (the byte, its offset, the frame's offset) must agree.
_SHOWN_COMMAND = re.compile(r"^unknown command .*?: (byte 0x[0-9a-f]{2} at byte \d+ cannot)", re.S)


def same_error(whole: str, bytewise: str) -> bool:
    """Whether two parser error messages report the same error (see above)."""
    return comparable_error(whole) == comparable_error(bytewise)


def comparable_error(message: str) -> str:
    """``message`` without the command text an "unknown command" error shows."""
    return _SHOWN_COMMAND.sub(r"\1", message)


def frames(data: bytes, version: str = "1.2") -> list[Frame]:
    return [f for f in parse(data, version) if isinstance(f, Frame)]


def drain(conn: ClientConnection | ServerConnection) -> list[Event]:
    """Every event the connection has now."""
    out = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return out
        out.append(event)
        if isinstance(event, ConnectionClosed):
            return out


class Pair:
    """A client and a server wired in memory (h11's ConnectionPair)."""

    def __init__(
        self, client: ClientConnection | None = None, server: ServerConnection | None = None
    ):
        self.client = client or ClientConnection()
        self.server = server or ServerConnection()

    def client_sends(self, event: Event, now: float | None = None) -> list[Event]:
        data = self.client.send(event, now)
        self.server.receive_data(data, now)
        return drain(self.server)

    def server_sends(self, event: Event, now: float | None = None) -> list[Event]:
        data = self.server.send(event, now)
        self.client.receive_data(data, now)
        return drain(self.client)

    def connect(self, version: str = "1.2", now: float | None = None, **kwargs: object) -> Pair:
        connect = Connect(
            accept_version=("1.0", "1.1", "1.2") if version != "1.0" else (), **kwargs
        )  # type: ignore[arg-type]
        if version == "1.1":
            connect = Connect(accept_version=("1.0", "1.1"), **kwargs)  # type: ignore[arg-type]
        assert self.client_sends(connect, now) == [connect]
        accepted = self.server.accept()
        assert self.server_sends(accepted, now) == [accepted]
        assert self.client.version == version
        return self
