"""Sections D, E and F of the checklist: client frames, receipts, server frames.

What must not happen (a MESSAGE after UNSUBSCRIBE, a transactional SEND
before COMMIT) is judged against a control: a message that must arrive on
the same path is sent after it, and once the control has arrived, whatever
the server would have delivered has had its chance (plus the settle time).
"""

from __future__ import annotations

from .. import Frame
from ._framing import expect_body, expect_header
from ._model import Fail, Skip, Warn
from ._registry import (
    MUST,
    POLICY,
    SHOULD,
    V11,
    V12,
    ack_frame,
    check,
    control,
    nothing_more,
    raw,
    refused,
)
from ._wire import CLOSED, Context, NoReply, Probe, describe

__all__: list[str] = []


def _send(destination: str, body: bytes = b"", *extra: tuple[str, str]) -> Frame:
    return Frame("SEND", (("destination", destination), *extra), body)


async def _controlled(ctx: Context, watcher: Probe, destination: str, what: str) -> None:
    """Publish a control message to ``destination`` and fail if ``watcher`` got
    anything else first (or within the settle time after it)."""
    sender = await ctx.connected()
    await sender.publish(destination, control(ctx))
    message = await watcher.message()
    if message.body != control(ctx):
        raise Fail(f"{what}: {describe(message)}")
    await nothing_more(watcher, what)


async def _barrier(ctx: Context, probe: Probe) -> None:
    """A frame with a receipt (a SUBSCRIBE elsewhere): the RECEIPT says every
    earlier frame was received (STOMP 1.2's cumulative receipts).

    Transactional SENDs carry no receipt of their own: RabbitMQ answers it
    only at COMMIT.
    """
    await probe.subscribe(ctx.topic(), "s-barrier")


async def _disconnect(probe: Probe, *, written: bool = False) -> None:
    """DISCONNECT (with a receipt) and wait for the RECEIPT or the close,
    whichever comes: what frames/disconnect-receipt judges is not judged again."""
    if not written:
        await probe.send(Frame("DISCONNECT", (("receipt", "bye"),)))
    reply = await probe.reply()
    if not isinstance(reply, Frame) and reply is not CLOSED:
        raise Fail(f"no RECEIPT and no close within {probe.ctx.timeout:g} s of DISCONNECT")
    if isinstance(reply, Frame) and reply.command == "ERROR":
        raise Fail(f"the server answered DISCONNECT with {describe(reply)}")


# -- D. Client frames ---------------------------------------------------------------


@check(
    "frames/send-without-destination",
    59,
    MUST,
    "a SEND without destination gets an ERROR",
)
async def send_without_destination(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    await refused(
        probe, raw("SEND", [("receipt", rid)], b"nowhere"), "a SEND without destination", rid
    )


@check(
    "frames/send-error-closes",
    60,
    MUST,
    "a SEND the server cannot process gets an ERROR, then a close",
    versions=V11,
)
async def send_error_closes(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    error = await refused(
        probe, raw("SEND", [("receipt", rid)], b"nowhere"), "a SEND without destination", rid
    )
    if not await probe.closes():
        raise Fail(
            f"the server sent {describe(error)} but kept the connection open for {ctx.timeout:g} s"
        )


@check(
    "frames/user-headers",
    61,
    MUST,
    "user headers of a SEND reach the MESSAGE with their values",
    versions=V11,
)
async def user_headers(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    await probe.subscribe(destination)
    sent = [("x-first", "1"), ("x-words", "two words"), ("x-symbols", "!#$%&'()*+,;=?@[]")]
    await probe.publish(destination, b"headers", sent)
    message = await probe.message("s-1")
    for name, value in sent:
        expect_header(message, name, value)


@check(
    "frames/server-owned-headers",
    62,
    POLICY,
    "a SEND cannot forge the MESSAGE's subscription; its receipt is not copied",
)
async def server_owned_headers(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    await probe.subscribe(destination)
    await probe.publish(destination, b"forged", [("subscription", "forged")])
    message = await probe.message()
    if message.get("subscription") != "s-1":
        raise Fail(f"the MESSAGE's first subscription header is the SEND's: {describe(message)}")
    if message.get("receipt") is not None:
        raise Fail(f"the MESSAGE carries the SEND's receipt header: {describe(message)}")


@check(
    "frames/subscribe-without-id",
    63,
    MUST,
    "a SUBSCRIBE without id gets an ERROR",
    versions=V11,
)
async def subscribe_without_id(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw("SUBSCRIBE", [("destination", ctx.topic()), ("receipt", rid)])
    await refused(probe, bad, "a SUBSCRIBE without id", rid)


@check(
    "frames/subscribe-without-destination",
    63,
    MUST,
    "a SUBSCRIBE without destination gets an ERROR",
)
async def subscribe_without_destination(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw("SUBSCRIBE", [("id", "s-1"), ("receipt", rid)])
    await refused(probe, bad, "a SUBSCRIBE without destination", rid)


@check(
    "frames/subscribe-error-closes",
    63,
    MUST,
    "a SUBSCRIBE the server cannot process gets an ERROR, then a close",
    versions=V11,
)
async def subscribe_error_closes(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    error = await refused(
        probe,
        raw("SUBSCRIBE", [("id", "s-1"), ("receipt", rid)]),
        "a SUBSCRIBE without destination",
        rid,
    )
    if not await probe.closes():
        raise Fail(
            f"the server sent {describe(error)} but kept the connection open for {ctx.timeout:g} s"
        )


@check(
    "frames/duplicate-subscription-id",
    64,
    POLICY,
    "a SUBSCRIBE reusing an active subscription id gets an ERROR",
    versions=V12,
)
async def duplicate_subscription(ctx: Context) -> None:
    probe = await ctx.connected()
    await probe.subscribe(ctx.topic(), "s-1")
    rid = probe.receipt_id()
    bad = raw("SUBSCRIBE", [("destination", ctx.topic()), ("id", "s-1"), ("receipt", rid)])
    await refused(probe, bad, "a second subscription with id s-1", rid)


@check("frames/bad-ack-mode", 65, POLICY, "a SUBSCRIBE with ack:bogus gets an ERROR")
async def bad_ack_mode(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw(
        "SUBSCRIBE",
        [("destination", ctx.topic()), ("id", "s-1"), ("ack", "bogus"), ("receipt", rid)],
    )
    await refused(probe, bad, "ack:bogus", rid)


@check(
    "frames/client-individual-in-1.0",
    65,
    POLICY,
    "ack:client-individual (a 1.1 mode) gets an ERROR in a 1.0 session",
    versions=("1.0",),
)
async def client_individual_10(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw(
        "SUBSCRIBE",
        [
            ("destination", ctx.topic()),
            ("id", "s-1"),
            ("ack", "client-individual"),
            ("receipt", rid),
        ],
    )
    await refused(probe, bad, "ack:client-individual in STOMP 1.0", rid)


@check(
    "frames/unsubscribe-unknown-id",
    66,
    POLICY,
    "an UNSUBSCRIBE of an unknown id gets an ERROR",
)
async def unsubscribe_unknown(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw("UNSUBSCRIBE", [("id", "never-subscribed"), ("receipt", rid)])
    await refused(probe, bad, "an UNSUBSCRIBE of an unknown id", rid)


@check(
    "frames/unsubscribe-stops-delivery",
    67,
    MUST,
    "once UNSUBSCRIBE is processed, no MESSAGE for that subscription follows",
)
async def unsubscribe_stops(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    await probe.subscribe(destination)
    rid = probe.receipt_id()
    await probe.send(Frame("UNSUBSCRIBE", (("id", "s-1"), ("receipt", rid))))
    await probe.receipt(rid)
    watcher = await ctx.connected()
    await watcher.subscribe(destination)
    sender = await ctx.connected()
    await sender.publish(destination, control(ctx))
    await watcher.message()
    await nothing_more(probe, "a MESSAGE arrived after UNSUBSCRIBE")


@check(
    "frames/unsubscribe-by-destination",
    66,
    MUST,
    "a 1.0 UNSUBSCRIBE may name the destination instead of the id",
    versions=("1.0",),
)
async def unsubscribe_by_destination(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    await probe.subscribe(destination, sub_id="")
    rid = probe.receipt_id()
    await probe.send(Frame("UNSUBSCRIBE", (("destination", destination), ("receipt", rid))))
    await probe.receipt(rid)
    watcher = await ctx.connected()
    await watcher.subscribe(destination)
    sender = await ctx.connected()
    await sender.publish(destination, control(ctx))
    await watcher.message()
    await nothing_more(probe, "a MESSAGE arrived after UNSUBSCRIBE destination:...")


@check(
    "frames/ack-without-id",
    69,
    MUST,
    "an ACK that does not name its message (1.2 id; 1.1 message-id and subscription) gets an ERROR",
    default=V11,
)
async def ack_without_id(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    # What the version needs, minus one: 1.2 without id, 1.1 without subscription.
    headers = {
        "1.2": [("subscription", "s-1"), ("message-id", "m-1")],
        "1.1": [("message-id", "m-1")],
        "1.0": [("subscription", "s-1")],
    }[ctx.version]
    missing = {"1.2": "id", "1.1": "subscription", "1.0": "message-id"}[ctx.version]
    await refused(probe, raw("ACK", [*headers, ("receipt", rid)]), f"an ACK without {missing}", rid)


@check(
    "frames/ack-unknown-message",
    70,
    POLICY,
    "an ACK of a message never delivered gets an ERROR",
)
async def ack_unknown(ctx: Context) -> None:
    probe = await ctx.connected()
    await probe.subscribe(
        ctx.queue(), ack="client-individual" if ctx.version != "1.0" else "client"
    )
    rid = probe.receipt_id()
    headers = {
        "1.2": [("id", "never-delivered")],
        "1.1": [("message-id", "never-delivered"), ("subscription", "s-1")],
        "1.0": [("message-id", "never-delivered")],
    }[ctx.version]
    await refused(
        probe, raw("ACK", [*headers, ("receipt", rid)]), "an ACK of an unknown message", rid
    )


@check(
    "frames/ack-twice",
    70,
    POLICY,
    "a second ACK of the same message gets an ERROR",
    versions=V11,
)
async def ack_twice(ctx: Context) -> None:
    probe = await ctx.connected()
    queue = ctx.queue()
    await probe.subscribe(queue, ack="client-individual")
    await probe.publish(queue, b"ack me once")
    message = await probe.message("s-1")
    rid = probe.receipt_id()
    await probe.send(ack_frame(message, ctx.version, receipt=rid))
    await probe.receipt(rid)
    rid = probe.receipt_id()
    again = probe.encode(ack_frame(message, ctx.version, receipt=rid))
    await refused(probe, again, "a second ACK of one message", rid)


@check(
    "frames/nack-in-1.0",
    71,
    POLICY,
    "NACK (a 1.1 frame) gets an ERROR in a 1.0 session",
    versions=("1.0",),
)
async def nack_10(ctx: Context) -> None:
    probe = await ctx.connected()
    queue = ctx.queue()
    await probe.subscribe(queue, ack="client")
    await probe.publish(queue, b"nack me")
    message = await probe.message("s-1")
    rid = probe.receipt_id()
    bad = raw("NACK", [("message-id", message.get("message-id") or ""), ("receipt", rid)])
    await refused(probe, bad, "a NACK in STOMP 1.0", rid)


@check(
    "frames/transaction-required",
    72,
    MUST,
    "BEGIN, COMMIT and ABORT without transaction get an ERROR",
)
async def transaction_required(ctx: Context) -> None:
    for command in ("BEGIN", "COMMIT", "ABORT"):
        probe = await ctx.connected()
        rid = probe.receipt_id()
        await refused(
            probe, raw(command, [("receipt", rid)]), f"a {command} without transaction", rid
        )


@check(
    "frames/duplicate-transaction-id",
    73,
    POLICY,
    "a BEGIN of a transaction id that is still open gets an ERROR",
    versions=V12,
)
async def duplicate_transaction(ctx: Context) -> None:
    probe = await ctx.connected()
    tx = ctx.name("tx")
    rid = probe.receipt_id()
    await probe.send(Frame("BEGIN", (("transaction", tx), ("receipt", rid))))
    await probe.receipt(rid)
    rid = probe.receipt_id()
    await refused(
        probe, raw("BEGIN", [("transaction", tx), ("receipt", rid)]), f"a second BEGIN of {tx}", rid
    )


@check(
    "frames/unknown-transaction",
    74,
    POLICY,
    "a COMMIT of a transaction never begun gets an ERROR",
)
async def unknown_transaction(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw("COMMIT", [("transaction", ctx.name("tx")), ("receipt", rid)])
    await refused(probe, bad, "a COMMIT of an unknown transaction", rid)


@check(
    "frames/transaction-commit",
    75,
    MUST,
    "transactional SENDs are held until COMMIT, then delivered in order",
)
async def transaction_commit(ctx: Context) -> None:
    watcher = await ctx.connected()
    destination = ctx.topic()
    await watcher.subscribe(destination)
    probe = await ctx.connected()
    tx = ctx.name("tx")
    rid = probe.receipt_id()
    await probe.send(Frame("BEGIN", (("transaction", tx), ("receipt", rid))))
    await probe.receipt(rid)
    for n in range(1, 4):
        await probe.publish(destination, f"tx {n}".encode(), [("transaction", tx)], receipt=False)
    await _barrier(ctx, probe)
    await watcher.quiet(ctx.settle)
    if watcher.pending("MESSAGE"):
        early = describe(watcher.pending("MESSAGE")[0])
        raise Fail(f"a transactional SEND was delivered before COMMIT: {early}")
    rid = probe.receipt_id()
    await probe.send(Frame("COMMIT", (("transaction", tx), ("receipt", rid))))
    await probe.receipt(rid)
    bodies = [m.body for m in await watcher.messages(3)]
    if bodies != [b"tx 1", b"tx 2", b"tx 3"]:
        raise Fail(f"after COMMIT the messages arrived as {bodies}")


@check(
    "frames/transaction-abort",
    75,
    MUST,
    "transactional SENDs are dropped on ABORT",
)
async def transaction_abort(ctx: Context) -> None:
    watcher = await ctx.connected()
    destination = ctx.topic()
    await watcher.subscribe(destination)
    probe = await ctx.connected()
    tx = ctx.name("tx")
    rid = probe.receipt_id()
    await probe.send(Frame("BEGIN", (("transaction", tx), ("receipt", rid))))
    await probe.receipt(rid)
    await probe.publish(destination, b"aborted", [("transaction", tx)], receipt=False)
    rid = probe.receipt_id()
    await probe.send(Frame("ABORT", (("transaction", tx), ("receipt", rid))))
    await probe.receipt(rid)
    await _controlled(ctx, watcher, destination, "an aborted SEND was delivered")


@check(
    "frames/transaction-aborted-on-disconnect",
    77,
    MUST,
    "an open transaction is aborted when its connection ends",
)
async def transaction_disconnect(ctx: Context) -> None:
    watcher = await ctx.connected()
    destination = ctx.topic()
    await watcher.subscribe(destination)
    probe = await ctx.connected()
    tx = ctx.name("tx")
    rid = probe.receipt_id()
    await probe.send(Frame("BEGIN", (("transaction", tx), ("receipt", rid))))
    await probe.receipt(rid)
    await probe.publish(destination, b"never committed", [("transaction", tx)], receipt=False)
    await _disconnect(probe)
    await probe.aclose()
    await _controlled(ctx, watcher, destination, "a SEND of a transaction left open was delivered")


@check(
    "frames/disconnect-receipt",
    79,
    SHOULD,
    "DISCONNECT with a receipt gets its RECEIPT, then the close",
)
async def disconnect_receipt(ctx: Context) -> None:
    probe = await ctx.connected()
    await probe.send(Frame("DISCONNECT", (("receipt", "77"),)))
    await probe.receipt("77")
    if not await probe.closes():
        raise Fail(
            f"the server did not close the connection within {ctx.timeout:g} s of DISCONNECT"
        )


@check(
    "frames/disconnect-without-receipt",
    80,
    POLICY,
    "DISCONNECT without a receipt closes the connection, with no ERROR",
)
async def disconnect_plain(ctx: Context) -> None:
    probe = await ctx.connected()
    await probe.send(Frame("DISCONNECT"))
    if not await probe.closes():
        raise Fail(
            f"the server did not close the connection within {ctx.timeout:g} s of DISCONNECT"
        )
    if probe.pending("ERROR"):
        raise Fail(f"the server answered DISCONNECT with {describe(probe.pending('ERROR')[0])}")


@check(
    "frames/nothing-after-disconnect",
    78,
    POLICY,
    "frames written after DISCONNECT are not processed",
)
async def nothing_after_disconnect(ctx: Context) -> None:
    watcher = await ctx.connected()
    destination = ctx.topic()
    await watcher.subscribe(destination)
    probe = await ctx.connected()
    await probe.send(
        Frame("DISCONNECT", (("receipt", "bye"),)), _send(destination, b"after DISCONNECT")
    )
    await _disconnect(probe, written=True)
    await _controlled(ctx, watcher, destination, "a SEND written after DISCONNECT was delivered")


@check(
    "frames/unknown-command",
    81,
    POLICY,
    "an unknown command gets an ERROR",
)
async def unknown_command(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    await refused(probe, raw("FOO", [("receipt", rid)]), "the unknown command FOO", rid)


# -- E. Receipts ------------------------------------------------------------------


@check(
    "receipts/every-frame",
    82,
    MUST,
    "every client frame with a receipt header gets its RECEIPT",
)
async def every_frame(ctx: Context) -> None:
    probe = await ctx.connected()
    version = ctx.version
    queue = ctx.queue()
    missing = []

    async def step(frame: Frame) -> None:
        rid = probe.receipt_id()
        await probe.send(Frame(frame.command, (*frame.headers, ("receipt", rid)), frame.body))
        try:
            await probe.receipt(rid)
        except Fail as exc:
            if probe.eof or probe.pending("ERROR"):
                raise Fail(f"{frame.command} with a receipt: {exc.reason}") from None
            missing.append(frame.command)

    mode = "client" if version == "1.0" else "client-individual"
    await step(Frame("SUBSCRIBE", (("destination", queue), ("id", "s-1"), ("ack", mode))))
    await step(_send(queue, b"one"))
    await step(ack_frame(await probe.message("s-1"), version))
    if version != "1.0":
        await step(_send(queue, b"two"))
        message = await probe.message("s-1")
        await step(ack_frame(message, version, nack=True))
        # A server that requeues a NACKed message at once (RabbitMQ) redelivers it
        # here: settle that copy too, so that no delivery is in flight at the
        # UNSUBSCRIBE (RabbitMQ answers one with ERROR "Subscription not found").
        try:
            again = await probe.message("s-1", timeout=min(ctx.timeout, 1.0))
        except NoReply:
            pass
        else:
            await step(ack_frame(again, version))
    tx = ctx.name("tx")
    await step(Frame("BEGIN", (("transaction", tx),)))
    await step(Frame("COMMIT", (("transaction", tx),)))
    await step(Frame("BEGIN", (("transaction", tx + "b"),)))
    await step(Frame("ABORT", (("transaction", tx + "b"),)))
    await step(Frame("UNSUBSCRIBE", (("id", "s-1"),)))
    await step(Frame("DISCONNECT"))
    if missing:
        raise Fail(f"no RECEIPT for {', '.join(missing)}")


@check(
    "receipts/in-order",
    84,
    SHOULD,
    "RECEIPTs come in the order of the frames that asked for them",
    versions=V12,
)
async def in_order(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    tx = ctx.name("tx")
    frames = [
        Frame("SUBSCRIBE", (("destination", destination), ("id", "s-1"))),
        _send(destination, b"first"),
        Frame("BEGIN", (("transaction", tx),)),
        Frame("COMMIT", (("transaction", tx),)),
        _send(destination, b"last"),
        Frame("BEGIN", (("transaction", tx + "b"),)),
        Frame("ABORT", (("transaction", tx + "b"),)),
    ]
    receipts = [probe.receipt_id() for _ in frames]
    await probe.send(
        *(
            Frame(f.command, (*f.headers, ("receipt", r)), f.body)
            for f, r in zip(frames, receipts, strict=True)
        )
    )
    got = []
    for _ in receipts:
        frame = await probe.take(lambda f: f.command == "RECEIPT", "a RECEIPT")
        got.append(frame.get("receipt-id") or "")
    if got != receipts:
        order = ", ".join(f"{frames[receipts.index(r)].command}" for r in got if r in receipts)
        raise Fail(f"the RECEIPTs came in the order {order}")


@check(
    "receipts/subscription-live",
    85,
    POLICY,
    "once a SUBSCRIBE's RECEIPT arrived, what is published is delivered",
)
async def subscription_live(ctx: Context) -> None:
    sender = await ctx.connected()
    probe = await ctx.connected()
    destination = ctx.topic()
    await probe.subscribe(destination)
    await sender.publish(destination, b"just after the receipt")
    expect_body(await probe.message("s-1"), b"just after the receipt")


@check(
    "receipts/error-receipt-id",
    86,
    SHOULD,
    "the ERROR for a frame that asked for a receipt carries receipt-id, and no RECEIPT comes",
)
async def error_receipt_id(ctx: Context) -> None:
    probe = await ctx.connected()
    error = await refused(
        probe, raw("SEND", [("receipt", "failing")], b"x"), "a SEND without destination", "failing"
    )
    if error.get("receipt-id") != "failing":
        raise Fail(f"the ERROR has no receipt-id:failing: {describe(error)}")


# -- F. Server frames --------------------------------------------------------------


@check(
    "server-frames/message-headers",
    88,
    MUST,
    "MESSAGE carries destination, message-id and subscription",
    versions=V11,
)
async def message_headers(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    await probe.subscribe(destination)
    await probe.publish(destination, b"headers")
    message = await probe.message()
    absent = [h for h in ("destination", "message-id", "subscription") if message.get(h) is None]
    if absent:
        raise Fail(f"the MESSAGE has no {', '.join(absent)} header: {describe(message)}")
    expect_header(message, "subscription", "s-1")


@check(
    "server-frames/one-message-per-subscription",
    89,
    MUST,
    "two subscriptions to one destination each get the MESSAGE, with their own id",
    versions=V11,
)
async def per_subscription(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    await probe.subscribe(destination, "s-1")
    await probe.subscribe(destination, "s-2")
    await probe.publish(destination, b"twice")
    ids = sorted(m.get("subscription") or "" for m in await probe.messages(2))
    if ids != ["s-1", "s-2"]:
        raise Fail(f"the two MESSAGEs name the subscriptions {ids}")


@check(
    "server-frames/message-destination",
    90,
    SHOULD,
    "the MESSAGE destination is the SEND's (on a topic and on a queue)",
)
async def message_destination(ctx: Context) -> None:
    probe = await ctx.connected()
    for n, destination in enumerate((ctx.topic(), ctx.queue()), 1):
        await probe.subscribe(destination, f"s-{n}")
        await probe.publish(destination, b"where")
        expect_header(await probe.message(f"s-{n}"), "destination", destination)


@check(
    "server-frames/message-id-unique",
    91,
    MUST,
    "every MESSAGE has its own message-id",
)
async def message_id_unique(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    await probe.subscribe(destination)
    rid = probe.receipt_id()
    frames = [_send(destination, f"m{n}".encode()) for n in range(19)]
    await probe.send(*frames, _send(destination, b"m19", ("receipt", rid)))
    await probe.receipt(rid)
    ids = [m.get("message-id") for m in await probe.messages(20, "s-1")]
    if len(set(ids)) != 20:
        raise Fail(f"20 MESSAGEs have {len(set(ids))} distinct message-ids")


@check(
    "server-frames/ack-header",
    92,
    MUST,
    "a MESSAGE for a client or client-individual subscription carries ack",
    versions=V12,
)
async def ack_header(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    await probe.subscribe(destination, "s-1", ack="client")
    await probe.subscribe(destination, "s-2", ack="client-individual")
    await probe.publish(destination, b"ack")
    for message in await probe.messages(2):
        if not message.get("ack"):
            raise Fail(f"the MESSAGE has no ack header: {describe(message)}")


@check(
    "server-frames/no-ack-header-for-auto",
    92,
    POLICY,
    "a MESSAGE for an auto subscription carries no ack",
    versions=V12,
)
async def no_ack_header(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    await probe.subscribe(destination)
    await probe.publish(destination, b"auto")
    message = await probe.message()
    if message.get("ack") is not None:
        raise Fail(f"the MESSAGE for an auto subscription has ack:{message.get('ack')}")


@check(
    "server-frames/message-body-headers",
    31,
    SHOULD,
    "a MESSAGE with a body carries content-length and the SEND's content-type",
    versions=V11,
)
async def message_body_headers(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    await probe.subscribe(destination)
    await probe.publish(destination, b"typed body", [("content-type", "text/plain;charset=utf-8")])
    message = await probe.message()
    expect_header(message, "content-length", "10")
    expect_header(message, "content-type", "text/plain;charset=utf-8")


@check(
    "server-frames/error-headers",
    93,
    SHOULD,
    "an ERROR carries message; with a body, content-type and content-length too",
    versions=V11,
)
async def error_headers(ctx: Context) -> None:
    probe = await ctx.connected()
    error = await refused(
        probe, raw("SEND", [("receipt", "e")], b"x"), "a SEND without destination", "e"
    )
    if not error.get("message"):
        raise Fail(f"the ERROR has no message header: {describe(error)}")
    if error.body:
        absent = [h for h in ("content-type", "content-length") if error.get(h) is None]
        if absent:
            raise Fail(f"the ERROR has a body and no {' or '.join(absent)} header")


@check(
    "server-frames/close-after-error",
    94,
    MUST,
    "the server closes the connection right after an ERROR",
    versions=V12,
)
async def close_after_error(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    try:
        error = await refused(
            probe, raw("BEGIN", [("receipt", rid)]), "a BEGIN without transaction", rid
        )
    except Warn as exc:
        raise Skip(f"no ERROR to judge: {exc.reason}") from None
    if not await probe.closes():
        raise Fail(
            f"the server sent {describe(error)} and kept the connection open for {ctx.timeout:g} s"
        )


@check(
    "server-frames/nothing-after-error",
    94,
    POLICY,
    "frames after the one that caused an ERROR are not processed",
)
async def nothing_after_error(ctx: Context) -> None:
    watcher = await ctx.connected()
    destination = ctx.topic()
    await watcher.subscribe(destination)
    probe = await ctx.connected()
    rid = probe.receipt_id()
    await probe.write(
        raw("BEGIN", []) + probe.encode(_send(destination, b"after the ERROR", ("receipt", rid)))
    )
    reply = await probe.reply()
    if not isinstance(reply, Frame) or reply.command != "ERROR":
        got = describe(reply) if isinstance(reply, Frame) else reply
        raise Skip(f"a BEGIN without transaction got {got}, not an ERROR")
    await _controlled(
        ctx, watcher, destination, "a SEND written after the frame that got an ERROR was delivered"
    )
