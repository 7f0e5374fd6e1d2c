"""Fuzz both connection roles after a valid handshake: whole input and byte-by-byte must agree.

The first input byte picks the scenario:

* bit 0: the role under test: 0 = :class:`~stomp_proto.ServerConnection`
  (the fuzz bytes are what a client sends after its CONNECT was accepted),
  1 = :class:`~stomp_proto.ClientConnection` (the fuzz bytes are what a server
  sends after CONNECTED);
* bits 1-2: the negotiated STOMP version (``1.0``, ``1.1``, ``1.2``; 3 = ``1.2``);
* bit 3: negotiate heart-beats (1 s both ways) so the timer paths are used;
* bit 4: small :class:`~stomp_proto.Limits` (256-byte header block, 8 headers,
  512-byte body, 4 subscriptions, 2 transactions, 4 pending receipts).

Each side also reacts to what it receives, the same way in both runs, so that
the fuzz input can reach deep states: the server answers every ``receipt`` and
delivers one MESSAGE per new subscription; the client subscribes in all three
ack modes, opens a transaction and asks for receipts before the fuzz bytes
arrive, and ACKs (or NACKs) every MESSAGE that needs it.

The rest of the input is fed once in a single ``receive_data`` call and once one
byte per call, then EOF. Both runs must produce the same events and either both
end cleanly or both raise :class:`~stomp_proto.RemoteProtocolError` after the
same events. When the server side fails, the ERROR frame from
:meth:`~stomp_proto.ServerConnection.error_for` must be sendable and parse as
an ERROR frame. Nothing else may escape.

Run with ``python fuzz/fuzz_connection.py fuzz/corpus -max_total_time=60``;
import the module to call :func:`check` directly.
"""

from __future__ import annotations

import sys

from stomp_proto import (
    NEED_DATA,
    PAUSED,
    SUPPORTED_VERSIONS,
    Begin,
    ClientConnection,
    Connect,
    ConnectionClosed,
    Error,
    Event,
    Frame,
    FrameParser,
    Limits,
    Message,
    RemoteProtocolError,
    Send,
    ServerConnection,
    Subscribe,
)

_SMALL = Limits(
    max_header_size=256,
    max_headers=8,
    max_body_size=512,
    max_subscriptions=4,
    max_transactions=2,
    max_pending_receipts=4,
)
_BEAT = (1000, 1000)


class _Scenario:
    """One connection under test, brought to CONNECTED, plus its reactions."""

    def __init__(self, config: int) -> None:
        self.version = SUPPORTED_VERSIONS[min((config >> 1) & 3, 2)]
        self.beat = _BEAT if config & 8 else (0, 0)
        self.limits = _SMALL if config & 16 else Limits()
        self.is_client = bool(config & 1)
        self.delivered = 0
        accept = () if self.version == "1.0" else (self.version,)
        connect = Connect(accept_version=accept, host="fuzz", heart_beat=self.beat)
        if self.is_client:
            self.client = ClientConnection(limits=self.limits)
            peer = ServerConnection(heart_beat=self.beat)
            peer.receive_data(self.client.send(connect))
            assert isinstance(peer.next_event(), Connect)
            self.client.receive_data(peer.send(peer.accept(session="fuzz")))
            assert isinstance(self.client.next_event(), Event)
            self._prime_client()
        else:
            self.server = ServerConnection(heart_beat=self.beat, limits=self.limits)
            self.server.receive_data(connect.to_frame().serialize("1.0"))
            assert isinstance(self.server.next_event(), Connect)
            self.server.send(self.server.accept(session="fuzz"))
        assert self.connection.version == self.version

    @property
    def connection(self) -> ClientConnection | ServerConnection:
        return self.client if self.is_client else self.server

    def _prime_client(self) -> None:
        modes = (
            ("auto", "client") if self.version == "1.0" else ("auto", "client", "client-individual")
        )
        for n, mode in enumerate(modes):
            self.client.send(
                Subscribe(destination=f"/queue/{n}", id=str(n), ack=mode, receipt=f"r{n}")
            )
        self.client.send(Begin(transaction="t0"))
        self.client.send(Send(destination="/queue/0", body=b"x", receipt="s0"))

    def react(self, event: Event) -> None:
        """Send what a well-behaved peer application would send after ``event``."""
        if self.is_client:
            if isinstance(event, Message):
                key = event.subscription if event.subscription is not None else event.destination
                mode = self.client.subscriptions.get(key)
                ids = (event.ack or "") + event.message_id + (event.subscription or "")
                if "\r" in ids and self.version != "1.2":
                    return  # a raw CR cannot be written back in 1.0/1.1 (see below)
                if mode in ("client", "client-individual"):
                    nack = mode == "client-individual" and self.delivered % 2 == 1
                    self.delivered += 1
                    self.client.send(event.make_nack() if nack else event.make_ack())
            return
        server = self.server
        # The MESSAGE goes to a fixed destination: a received SUBSCRIBE may name
        # an empty destination (the parser only checks that the header is
        # present, while Message() refuses an empty one), or one with a raw CR
        # that 1.0 and 1.1 cannot write back.
        if isinstance(event, Subscribe):
            self.delivered += 1
            server.send(
                Message(
                    destination="/fuzz",
                    message_id=f"m{self.delivered}",
                    subscription=event.id,
                    ack=f"a{self.delivered}",
                    body=b"hello",
                )
            )
        receipt = getattr(event, "receipt", None)
        # Two receipt ids are accepted on input but cannot be answered: an
        # empty one (make_receipt() refuses it) and, in 1.0 and 1.1, one with
        # a raw CR (the serializer cannot write it back in those versions).
        if receipt and not ("\r" in receipt and self.version != "1.2"):
            server.send(event.make_receipt())


def _run(config: int, chunks: list[bytes]) -> tuple[list[Event], str | None]:
    scenario = _Scenario(config)
    conn = scenario.connection
    events: list[Event] = []

    def drain() -> bool:
        """Pull events until the connection wants data; False once it is done."""
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                return True
            if event is PAUSED:
                return False
            assert isinstance(event, Event), event
            events.append(event)
            if isinstance(event, ConnectionClosed):
                return False
            scenario.react(event)

    try:
        for chunk in chunks:
            conn.receive_data(chunk)
            if not drain():
                return events, None
        conn.receive_data(b"")
        drain()
    except RemoteProtocolError as exc:
        _check_error(scenario, exc)
        return events, exc.message
    return events, None


def _check_error(scenario: _Scenario, exc: RemoteProtocolError) -> None:
    conn = scenario.connection
    assert conn.state.name == "ERROR", conn.state
    try:
        conn.next_event()
    except RemoteProtocolError as again:
        assert again is exc
    else:
        raise AssertionError("the connection recovered after a RemoteProtocolError")
    if scenario.is_client:
        return
    error = scenario.server.error_for(exc)
    assert isinstance(error, Error)
    data = scenario.server.send(error)
    frames = FrameParser(scenario.version).feed(data)
    assert len(frames) == 1 and isinstance(frames[0], Frame), frames
    assert frames[0].command == "ERROR"
    assert frames[0].get("message") == error.message, (frames[0], error)


def check(data: bytes) -> None:
    """Run one fuzz input; raise AssertionError (or whatever escaped) on a bug."""
    if not data:
        return
    config, payload = data[0], data[1:]
    whole, whole_error = _run(config, [payload] if payload else [])
    trickle, trickle_error = _run(config, [payload[i : i + 1] for i in range(len(payload))])
    assert whole == trickle, f"whole gave {whole!r}, byte-by-byte gave {trickle!r}"
    assert (whole_error is None) == (trickle_error is None), (
        f"whole error {whole_error!r} vs byte-by-byte error {trickle_error!r}"
    )


def main() -> None:
    import atheris  # type: ignore[import-untyped]

    atheris.instrument_all()
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
