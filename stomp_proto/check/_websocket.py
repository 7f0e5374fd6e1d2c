"""Section H of the checklist: STOMP over WebSocket (``ws://`` and ``wss://`` only).

These checks control the WebSocket message boundaries the server sees (a
frame cut across messages, several frames in one, binary messages) and judge
the boundaries of what it sends: the transport keeps every complete message
received, which the core's parser then reads one at a time.
"""

from __future__ import annotations

from .. import Frame, FrameParser, RemoteProtocolError
from ._model import Fail
from ._registry import MUST, POLICY, SHOULD, check
from ._wire import STOMP_SUBPROTOCOLS, Context, Probe, describe

__all__: list[str] = []


async def _opened(ctx: Context, subprotocols: tuple[str, ...] = STOMP_SUBPROTOCOLS) -> Probe:
    probe = ctx.probe()
    try:
        await probe.open(subprotocols)
    except Exception as exc:  # the handshake failed: that is the verdict
        raise Fail(
            f"the WebSocket handshake offering {', '.join(subprotocols)} failed: {exc}"
        ) from None
    return probe


@check(
    "websocket/subprotocol",
    104,
    MUST,
    "the handshake echoes one of the STOMP subprotocols offered (browsers require it)",
    versions=(),
    websocket=True,
)
async def subprotocol(ctx: Context) -> None:
    probe = await _opened(ctx)
    ws = probe.websocket
    assert ws is not None
    if ws.subprotocol not in STOMP_SUBPROTOCOLS:
        raise Fail(
            f"offered {', '.join(STOMP_SUBPROTOCOLS)}, the server chose "
            f"{ws.subprotocol or 'no subprotocol'}"
        )


@check(
    "websocket/only-offered-subprotocol",
    104,
    MUST,
    "the server never chooses a subprotocol that was not offered",
    versions=(),
    websocket=True,
)
async def only_offered(ctx: Context) -> None:
    probe = await _opened(ctx, ("v11.stomp",))
    ws = probe.websocket
    assert ws is not None
    if ws.subprotocol not in (None, "v11.stomp"):
        raise Fail(f"offered v11.stomp alone, the server chose {ws.subprotocol}")


@check(
    "websocket/subprotocol-advisory",
    105,
    POLICY,
    "the version comes from accept-version, whatever subprotocol was chosen",
    versions=(),
    websocket=True,
)
async def advisory(ctx: Context) -> None:
    if "1.2" not in ctx.versions:
        return
    probe = await _opened(ctx, ("v10.stomp",))
    reply = await probe.connect("1.2")
    if reply.get("version") != "1.2":
        raise Fail(f"with v10.stomp chosen, accept-version:1.2 got {describe(reply)}")


@check(
    "websocket/frame-across-messages",
    106,
    MUST,
    "a frame may span several WebSocket messages",
    versions=(),
    websocket=True,
)
async def across(ctx: Context) -> None:
    probe = await _opened(ctx)
    version = ctx.session_version
    target = ctx.target
    headers = [("accept-version", version), ("host", target.vhost)]
    if target.login is not None:
        headers.append(("login", target.login))
    if target.passcode is not None:
        headers.append(("passcode", target.passcode))
    connect = Frame("CONNECT", tuple(headers)).serialize(version)
    third = len(connect) // 3
    await probe.write_pieces(connect, [third, 2 * third])
    reply = await probe.next()
    if reply is None or reply.command != "CONNECTED":
        raise Fail(f"a CONNECT in three WebSocket messages got {reply and describe(reply)}")
    destination = ctx.topic()
    await probe.subscribe(destination)
    rid = probe.receipt_id()
    send = probe.encode(Frame("SEND", (("destination", destination), ("receipt", rid)), b"split"))
    await probe.write_pieces(send, [len(send) - 3])
    await probe.receipt(rid)
    await probe.message("s-1")


@check(
    "websocket/frames-in-one-message",
    107,
    MUST,
    "one WebSocket message may hold several frames and heart-beats",
    versions=(),
    websocket=True,
)
async def several(ctx: Context) -> None:
    probe = await _opened(ctx)
    await probe.connect()
    destination = ctx.topic()
    r1, r2 = probe.receipt_id(), probe.receipt_id()
    await probe.write(
        b"\n"
        + probe.encode(
            Frame("SUBSCRIBE", (("destination", destination), ("id", "s-1"), ("receipt", r1)))
        )
        + b"\n"
        + probe.encode(Frame("SEND", (("destination", destination), ("receipt", r2)), b"two"))
        + b"\n"
    )
    await probe.receipt(r1)
    await probe.receipt(r2)
    await probe.message("s-1")


@check(
    "websocket/binary-messages",
    108,
    MUST,
    "frames in binary WebSocket messages are read like text ones",
    versions=(),
    websocket=True,
)
async def binary_messages(ctx: Context) -> None:
    probe = await _opened(ctx)
    probe.binary = True
    await probe.connect()
    destination = ctx.topic()
    await probe.subscribe(destination)
    await probe.publish(destination, b"binary")
    await probe.message("s-1")


@check(
    "websocket/one-frame-per-message",
    110,
    SHOULD,
    "each WebSocket message from the server holds exactly one frame",
    versions=(),
    websocket=True,
)
async def one_per_message(ctx: Context) -> None:
    probe = await _opened(ctx)
    await probe.connect()
    destination = ctx.topic()
    await probe.subscribe(destination)
    await probe.publish(destination, b"one")
    await probe.publish(destination, b"two")
    await probe.messages(2, "s-1")
    ws = probe.websocket
    assert ws is not None
    for kind, data in ws.messages:
        if not data.strip(b"\r\n"):
            continue  # a heart-beat
        parser = FrameParser(probe.version, max_body_size=64 << 20)
        try:
            frames = [f for f in parser.feed(data) if isinstance(f, Frame)]
        except RemoteProtocolError as exc:
            raise Fail(f"a {kind} WebSocket message is not whole frames: {exc}") from None
        if len(frames) != 1 or parser.buffered:
            raise Fail(
                f"a {kind} WebSocket message holds {len(frames)} frames"
                + (f" and {parser.buffered} bytes of another" if parser.buffered else "")
                + f": {data[:80]!r}"
            )


@check(
    "websocket/binary-body",
    110,
    POLICY,
    "a MESSAGE whose body is not UTF-8 arrives intact (in a binary WebSocket message)",
    versions=(),
    websocket=True,
)
async def binary_body(ctx: Context) -> None:
    probe = await _opened(ctx)
    await probe.connect()
    destination = ctx.topic()
    await probe.subscribe(destination)
    body = b"\x00\xff\xfe\x80 not UTF-8"
    await probe.publish(destination, body, [("content-type", "application/octet-stream")])
    try:
        message = await probe.message("s-1")
    except Fail as exc:
        ws = probe.websocket
        why = ws.failure if ws is not None and ws.failure else exc.reason
        raise Fail(f"a MESSAGE with a non-UTF-8 body did not arrive: {why}") from None
    if message.body != body:
        raise Fail(f"the non-UTF-8 body arrived as {message.body!r}")
