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
delivers one MESSAGE per new subscription (to the subscription the core says
it belongs to: :meth:`~stomp_proto.ServerConnection.subscription_for`); the
client subscribes in all three ack modes, opens a transaction and asks for
receipts before the fuzz bytes arrive, and ACKs (or NACKs) every MESSAGE that
needs it. Each reaction is sent only if
:meth:`~stomp_proto.ServerConnection.check` allows it.

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

import dataclasses
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
        """Send what a well-behaved peer application would send after ``event``.

        It asks the core what to name and whether it may send (the
        subscription a MESSAGE belongs to, ``check()``) rather than guessing:
        received frames may hold what cannot be written back (an empty
        destination, a raw CR in 1.0 and 1.1, an empty receipt id).
        """
        if self.is_client:
            client = self.client
            if isinstance(event, Message):
                sub = client.subscription_for(event)
                mode = None if sub is None else client.subscriptions[sub]
                if mode in ("client", "client-individual"):
                    nack = mode == "client-individual" and self.delivered % 2 == 1
                    self.delivered += 1
                    settle: Event = event.make_nack() if nack else event.make_ack()
                    if client.check(settle) is None:
                        client.send(settle)
            return
        server = self.server
        if isinstance(event, Subscribe):
            self.delivered += 1
            message = self._message_for(event)
            if message is not None and server.check(message) is None:
                server.send(message)
        receipt = getattr(event, "receipt", None)
        if receipt:  # (make_receipt() refuses an empty receipt id)
            answer = event.make_receipt()
            if server.check(answer) is None:
                server.send(answer)

    def _message_for(self, event: Subscribe) -> Message | None:
        """A MESSAGE for the subscription ``event`` opened, or None if it is not active."""
        server = self.server
        key = event.subscription_key
        if key not in server.subscriptions:
            return None
        message = Message(
            destination=event.destination or "/fuzz",
            message_id=f"m{self.delivered}",
            subscription=event.id,
            ack=f"a{self.delivered}",
            body=b"hello",
        )
        if server.subscription_for(message) != key:
            # STOMP 1.0 without id and several subscriptions: name the key, the
            # way stomp-proto books such a subscription.
            message = dataclasses.replace(message, subscription=key)
        assert server.subscription_for(message) == key, (message, server.subscriptions)
        return message


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
