"""Sections G and I of the checklist: acknowledgement and destination semantics.

Acknowledgement checks use a queue, where a message that was not consumed
goes back for the next consumer: a first connection takes messages and
settles some of them, closes, and a second connection (subscribed to the
same queue) shows what the server still holds, up to a control message
published after it subscribed. Destination checks use the ``/topic/`` and
``/queue/`` conventions that RabbitMQ, ActiveMQ, Artemis, Spring and
stomp-proto's broker share (``--topic-prefix``/``--queue-prefix`` change them).
"""

from __future__ import annotations

import asyncio

from .. import Frame
from ._model import Fail
from ._registry import ALL, MUST, POLICY, V11, ack_frame, check, control, nothing_more
from ._wire import Context, Probe, describe

__all__: list[str] = []


async def _left_over(ctx: Context, queue: str) -> list[bytes]:
    """The bodies a fresh consumer of ``queue`` gets before a control message."""
    probe = await ctx.connected()
    await probe.subscribe(queue, "s-9")
    sender = await ctx.connected()
    await sender.publish(queue, control(ctx))
    bodies: list[bytes] = []
    while True:
        message = await probe.message("s-9")
        if message.body == control(ctx):
            return bodies
        bodies.append(message.body)


async def _delivered(ctx: Context, ack: str, count: int) -> tuple[Probe, str, list[Frame]]:
    """A consumer of a new queue with ``ack`` mode, and the ``count`` messages it got."""
    queue = ctx.queue()
    probe = await ctx.connected()
    await probe.subscribe(queue, "s-1", ack=ack)
    sender = await ctx.connected()
    for n in range(1, count + 1):
        await sender.publish(queue, f"m{n}".encode())
    messages = await probe.messages(count, "s-1")
    return probe, queue, messages


def _names(bodies: list[bytes]) -> str:
    return ", ".join(b.decode("utf-8", "replace") for b in bodies) or "nothing"


@check(
    "acks/auto-not-redelivered",
    98,
    MUST,
    "a message delivered to an auto subscription is consumed: not redelivered",
)
async def auto_consumed(ctx: Context) -> None:
    probe, queue, _ = await _delivered(ctx, "auto", 1)
    await probe.aclose()
    left = await _left_over(ctx, queue)
    if left:
        raise Fail(f"after the auto consumer closed, the next consumer got {_names(left)} again")


@check(
    "acks/client-cumulative",
    99,
    MUST,
    "in client mode an ACK settles that message and every earlier one of the subscription",
    levels={"1.0": POLICY},
)
async def client_cumulative(ctx: Context) -> None:
    probe, queue, messages = await _delivered(ctx, "client", 3)
    rid = probe.receipt_id()
    await probe.send(ack_frame(messages[1], ctx.version, receipt=rid))
    await probe.receipt(rid)
    await probe.aclose()
    left = await _left_over(ctx, queue)
    if left != [b"m3"]:
        raise Fail(
            f"m1..m3 delivered, m2 acknowledged (client mode), connection closed: the next "
            f"consumer got {_names(left)}, not m3 alone"
        )


@check(
    "acks/client-individual",
    100,
    MUST,
    "in client-individual mode an ACK settles only the message it names",
    versions=V11,
)
async def client_individual(ctx: Context) -> None:
    probe, queue, messages = await _delivered(ctx, "client-individual", 3)
    rid = probe.receipt_id()
    await probe.send(ack_frame(messages[2], ctx.version, receipt=rid))
    await probe.receipt(rid)
    await probe.aclose()
    left = sorted(await _left_over(ctx, queue))
    if left != [b"m1", b"m2"]:
        raise Fail(
            f"m1..m3 delivered, m3 acknowledged (client-individual), connection closed: the "
            f"next consumer got {_names(left)}, not m1 and m2"
        )


@check(
    "acks/ack-identifies-message",
    69,
    MUST,
    "an ACK in the version's form (1.2 id; 1.1 message-id, subscription; 1.0 message-id) works",
    default=ALL,
)
async def ack_forms(ctx: Context) -> None:
    mode = "client" if ctx.version == "1.0" else "client-individual"
    probe, queue, (message,) = await _delivered(ctx, mode, 1)
    rid = probe.receipt_id()
    await probe.send(ack_frame(message, ctx.version, receipt=rid))
    await probe.receipt(rid)
    await probe.aclose()
    left = await _left_over(ctx, queue)
    if left:
        raise Fail(f"the acknowledged message was delivered again: {_names(left)}")


@check(
    "acks/transactional-ack",
    76,
    MUST,
    "an ACK in a transaction that is aborted leaves the message unacknowledged",
    versions=V11,
)
async def transactional_ack(ctx: Context) -> None:
    probe, queue, (message,) = await _delivered(ctx, "client-individual", 1)
    tx = ctx.name("tx")
    rid = probe.receipt_id()
    await probe.send(Frame("BEGIN", (("transaction", tx), ("receipt", rid))))
    await probe.receipt(rid)
    rid = probe.receipt_id()
    await probe.send(ack_frame(message, ctx.version, transaction=tx, receipt=rid))
    await probe.receipt(rid)
    rid = probe.receipt_id()
    await probe.send(Frame("ABORT", (("transaction", tx), ("receipt", rid))))
    await probe.receipt(rid)
    await probe.aclose()
    left = await _left_over(ctx, queue)
    if left != [b"m1"]:
        raise Fail(
            f"after ACK in a transaction, ABORT and close, the next consumer got "
            f"{_names(left)}, not m1"
        )


@check(
    "acks/nack-redelivers",
    103,
    POLICY,
    "a NACKed queue message is delivered again",
    versions=V11,
)
async def nack_redelivers(ctx: Context) -> None:
    probe, _, (message,) = await _delivered(ctx, "client-individual", 1)
    rid = probe.receipt_id()
    await probe.send(ack_frame(message, ctx.version, nack=True, receipt=rid))
    await probe.receipt(rid)
    again = await probe.message("s-1")
    if again.body != message.body:
        raise Fail(f"after the NACK of m1 the subscription got {describe(again)}")


# -- I. Destinations -------------------------------------------------------------------


@check(
    "destinations/topic-fan-out",
    114,
    POLICY,
    "every subscriber of a /topic/ destination gets a copy",
)
async def topic_fan_out(ctx: Context) -> None:
    destination = ctx.topic()
    first, second = await ctx.connected(), await ctx.connected()
    await first.subscribe(destination)
    await second.subscribe(destination)
    sender = await ctx.connected()
    await sender.publish(destination, b"fan out")
    for probe in (first, second):
        await probe.message("s-1")


@check(
    "destinations/queue-one-consumer",
    115,
    POLICY,
    "each message to a /queue/ destination reaches exactly one of its consumers",
)
async def queue_one_consumer(ctx: Context) -> None:
    queue = ctx.queue()
    first, second = await ctx.connected(), await ctx.connected()
    await first.subscribe(queue)
    await second.subscribe(queue)
    sender = await ctx.connected()
    sent = [f"m{n}".encode() for n in range(1, 7)]
    for body in sent:
        await sender.publish(queue, body)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.timeout
    while True:
        got = sorted(m.body for p in (first, second) for m in p.pending("MESSAGE"))
        if len(got) >= len(sent) or loop.time() > deadline:
            break
        await asyncio.gather(first.quiet(ctx.settle / 2), second.quiet(ctx.settle / 2))
    await asyncio.gather(first.quiet(ctx.settle), second.quiet(ctx.settle))
    got = sorted(m.body for p in (first, second) for m in p.pending("MESSAGE"))
    if got != sent:
        raise Fail(f"6 messages sent to a queue with two consumers; they got {_names(got)}")


@check(
    "destinations/queue-keeps-messages",
    115,
    POLICY,
    "a message sent to a /queue/ destination with no consumer waits for one",
)
async def queue_keeps(ctx: Context) -> None:
    queue = ctx.queue()
    sender = await ctx.connected()
    await sender.publish(queue, b"waiting")
    probe = await ctx.connected()
    await probe.subscribe(queue)
    message = await probe.message("s-1")
    if message.body != b"waiting":
        raise Fail(f"the first consumer got {describe(message)}")


@check(
    "destinations/order",
    120,
    POLICY,
    "messages from one connection arrive in the order sent",
)
async def order(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    await probe.subscribe(destination)
    rid = probe.receipt_id()
    frames = [
        Frame("SEND", (("destination", destination),), f"m{n}".encode()) for n in range(1, 50)
    ]
    frames.append(Frame("SEND", (("destination", destination), ("receipt", rid)), b"m50"))
    await probe.send(*frames)
    await probe.receipt(rid)
    bodies = [m.body for m in await probe.messages(50, "s-1")]
    if bodies != [f"m{n}".encode() for n in range(1, 51)]:
        first = next(i for i, b in enumerate(bodies, 1) if b != f"m{i}".encode())
        raise Fail(f"50 SENDs arrived out of order: message {first} was {bodies[first - 1]!r}")
    await nothing_more(probe, "a 51st MESSAGE arrived")
