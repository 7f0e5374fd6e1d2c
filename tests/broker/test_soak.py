"""The message-integrity soak (issue 9, "Deliver"): nothing accepted is lost.

Producers and consumers run against one embedded broker for a bounded time,
on loopback, with randomness from one seed (printed; set ``STOMP_SOAK_SEED``
to replay the same choices, ``STOMP_SOAK_SECONDS`` to run longer or shorter,
``STOMP_SOAK_BACKENDS=asyncio,trio`` for both backends; asyncio alone by
default, because the soak is about the broker's bookkeeping, which is the
same on both). Every body carries its producer's id and a sequence number per
producer and destination.

Queues (:func:`test_soak_queues`): producers send batches, each with a receipt
on its last SEND (some batches in a transaction, the receipt on COMMIT); a
message is *accepted* once that receipt is seen. Consumers in every ack mode
(``auto``, ``client``, ``client-individual``, with and without
``prefetch-count``, some slow readers) come and go at random: those that acknowledge are killed
abruptly (FIN or RST, no DISCONNECT, whatever they had not acknowledged still
unacknowledged), ``auto`` ones leave with DISCONNECT and read to its RECEIPT
(an ``auto`` message written to a socket that is then reset is consumed by
definition, so abrupt kills would prove nothing about the broker). Some
``client-individual`` consumers NACK a few messages. A few producers are
reset in the middle of a batch: their unreceipted messages may or may not
arrive. The soak proves that:

* every accepted message is delivered at least once;
* a message delivered more than once is marked ``redelivered:true`` on every
  delivery after the first;
* each consumer sees each producer's messages in order, among those not
  redelivered;
* nothing is left behind: once every consumer has acknowledged and left, the
  queues are empty;
* the broker's counters agree: every message it published was delivered once
  plus its redeliveries.

Topics (:func:`test_soak_topics`): subscribers that are never killed (on plain
topics and on a pattern, in every ack mode) see every message published to a
destination they match, exactly once and in order per producer; subscribers
that come and go see, while they live, an unbroken run of each producer's
messages, in order, never twice; and no copy is dropped.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from dataclasses import dataclass, field

import anyio
import pytest

from stomp_proto import Frame
from stomp_proto.broker import Broker

from .faultkit import RawClient, embedded, send_frame, still_serving, stomp, tcp_port

pytestmark = pytest.mark.anyio

SEED = int(os.environ.get("STOMP_SOAK_SEED", str(random.SystemRandom().randrange(2**32))))
SECONDS = float(os.environ.get("STOMP_SOAK_SECONDS", "18"))
BACKENDS = os.environ.get("STOMP_SOAK_BACKENDS", "asyncio").split(",")

Key = tuple[str, str, int]  # (producer id, destination, sequence number)


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def rng_for(name: str) -> random.Random:
    """A generator per task, so that one task's choices do not depend on the others'."""
    return random.Random(f"{SEED}/{name}")


def body_for(rng: random.Random, pid: str, destination: str, seq: int) -> bytes:
    head = f"{pid} {destination} {seq} ".encode()
    return head + b"." * rng.choice((0, 10, 100, 1000, 4000))


def key_of(frame: Frame) -> Key:
    pid, destination, seq, _ = frame.body.split(b" ", 3)
    return pid.decode(), destination.decode(), int(seq)


@dataclass
class Flag:
    on: bool


@dataclass
class Delivery:
    consumer: str  # one incarnation of a consumer
    key: Key
    redelivered: bool
    message_id: str


@dataclass
class Ledger:
    """What was accepted and what was delivered, for the checks at the end."""

    accepted: set[Key] = field(default_factory=set)
    sent: set[Key] = field(default_factory=set)
    deliveries: list[Delivery] = field(default_factory=list)
    kills: int = 0
    leaves: int = 0
    nacks: int = 0
    transactions: int = 0
    producer_resets: int = 0

    def record(self, consumer: str, frame: Frame) -> Delivery:
        delivery = Delivery(
            consumer,
            key_of(frame),
            frame.get("redelivered") == "true",
            frame.get("message-id") or "",
        )
        self.deliveries.append(delivery)
        return delivery


# -- producers -------------------------------------------------------------------------


async def producer(
    port: int, name: str, destinations: list[str], ledger: Ledger, stop: anyio.Event
) -> None:
    """Batches with a receipt on the last SEND (or on COMMIT); now and then a
    reset in the middle of a batch, and a new producer id after it."""
    rng = rng_for(name)
    incarnation = 0
    while not stop.is_set():
        pid = f"{name}.{incarnation}"
        raw = await RawClient.connected(port)
        seqs: dict[str, int] = defaultdict(int)
        try:
            while not stop.is_set():
                destination = rng.choice(destinations)
                keys = [
                    (pid, destination, seqs[destination] + i) for i in range(rng.randint(1, 20))
                ]
                seqs[destination] += len(keys)
                frames = [send_frame(d, body_for(rng, p, d, s)) for p, d, s in keys]
                ledger.sent.update(keys)
                if rng.random() < 0.03:  # reset in the middle of a batch
                    data = b"".join(frames)
                    await raw.write(data[: rng.randrange(len(data))])
                    ledger.producer_resets += 1
                    await raw.reset()
                    break
                if rng.random() < 0.1:
                    tx = f"tx-{seqs[destination]}"
                    head = stomp("BEGIN", [("transaction", tx)])
                    frames = [
                        send_frame(d, body_for(rng, p, d, s), [("transaction", tx)])
                        for p, d, s in keys
                    ]
                    tail = stomp("COMMIT", [("transaction", tx), ("receipt", tx)])
                    await raw.write(head + b"".join(frames) + tail)
                    await raw.receipt(tx, timeout=20)
                    ledger.transactions += 1
                else:
                    last = keys[-1]
                    frames[-1] = send_frame(
                        last[1], body_for(rng, *last), [("receipt", f"r{last[2]}")]
                    )
                    await raw.write(b"".join(frames))
                    await raw.receipt(f"r{last[2]}", timeout=20)
                ledger.accepted.update(keys)
                await anyio.sleep(rng.choice((0, 0.001, 0.005)))
        finally:
            await raw.aclose()
        incarnation += 1


# -- the queue soak --------------------------------------------------------------------


QUEUES = ["/queue/soak.a", "/queue/soak.b"]
MODES = ["auto", "client", "client-individual"]


async def queue_consumer(
    port: int,
    slot: int,
    ledger: Ledger,
    churn: Flag,
    finish: anyio.Event,
    queue: str | None = None,
) -> None:
    """One consumer slot: consumers in random ack modes, each living a random
    time while ``churn`` is set, replaced when they die. When ``finish`` is set
    the last one acknowledges what it has and leaves with DISCONNECT. With
    ``queue``, every consumer of the slot subscribes there (else to a random one
    of ``QUEUES``)."""
    rng = rng_for(f"consumer-{slot}")
    incarnation = 0
    while True:
        name = f"c{slot}.{incarnation}"
        incarnation += 1
        mode = rng.choice(MODES)
        prefetch = rng.choice((None, 1, 10, 100))
        ack_every = 1 if mode != "client" else min(rng.choice((1, 5, 20)), prefetch or 20)
        headers = [] if prefetch is None else [("prefetch-count", str(prefetch))]
        slow = rng.random() < 0.2  # reads 2 ms per message: its backlog builds up
        raw = await RawClient.connected(port)
        destination = rng.choice(QUEUES) if queue is None else queue
        await raw.subscribe(destination, "q", ack=mode, headers=headers)
        lifetime = anyio.current_time() + rng.uniform(0.2, 2.5)
        unacked = 0
        last_ack = ""
        while True:
            dying = churn.on and anyio.current_time() > lifetime
            if dying or finish.is_set():
                break
            try:
                frame = await raw.frame(timeout=0.1)
            except TimeoutError:
                if unacked:  # idle: settle what is held (the cumulative ACK's rest)
                    await raw.send("ACK", [("id", last_ack)])
                    unacked = 0
                continue
            assert frame is not None, f"seed={SEED}: {name} lost its connection"
            assert frame.command == "MESSAGE", (SEED, frame)
            ledger.record(name, frame)
            if slow:
                await anyio.sleep(0.002)
            if mode == "auto":
                continue
            last_ack = frame.get("ack") or ""
            if mode == "client-individual":
                if churn.on and rng.random() < 0.02:
                    await raw.send("NACK", [("id", last_ack)])
                    ledger.nacks += 1
                else:
                    await raw.send("ACK", [("id", last_ack)])
                continue
            unacked += 1
            if unacked >= ack_every:
                await raw.send("ACK", [("id", last_ack)])
                unacked = 0
        if finish.is_set() or mode == "auto":
            # A polite exit: everything it was sent arrives before the RECEIPT.
            if unacked:
                await raw.send("ACK", [("id", last_ack)])
            await raw.send("DISCONNECT", [("receipt", "bye")])
            for frame in await raw.receipt("bye", timeout=20):
                assert frame.command == "MESSAGE", (SEED, frame)
                ledger.record(name, frame)  # auto: consumed; the others: redelivered later
            await raw.aclose()
            ledger.leaves += 1
            if finish.is_set():
                return
        else:
            ledger.kills += 1
            if rng.random() < 0.5:
                await raw.reset()
            else:
                await raw.aclose()


def check_order(ledger: Ledger, *, contiguous: bool = False) -> None:
    """Per consumer and producer-destination, the messages not redelivered come in
    sequence order (and, with ``contiguous``, without a gap)."""
    runs: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for d in ledger.deliveries:
        if not d.redelivered:
            runs[(d.consumer, d.key[0], d.key[1])].append(d.key[2])
    for (consumer, pid, destination), seqs in runs.items():
        assert seqs == sorted(seqs), f"seed={SEED}: {consumer} got {pid} {destination} out of order"
        if contiguous:
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (
                f"seed={SEED}: {consumer} missed some of {pid}'s messages to {destination}"
            )


async def test_soak_queues(anyio_backend: str) -> None:
    print(f"soak seed {SEED} (STOMP_SOAK_SEED to replay), {SECONDS} s")
    ledger = Ledger()
    churn, finish, stop = Flag(True), anyio.Event(), anyio.Event()
    async with embedded(max_pending_bytes=256 * 1024) as broker:
        port = tcp_port(broker)
        with anyio.fail_after(SECONDS + 60):
            async with anyio.create_task_group() as consumers:
                for slot in range(6):
                    consumers.start_soon(queue_consumer, port, slot, ledger, churn, finish)
                async with anyio.create_task_group() as producers:
                    for p in range(4):
                        producers.start_soon(producer, port, f"p{p}", QUEUES, ledger, stop)
                    await anyio.sleep(SECONDS)
                    stop.set()
                churn.on = False  # no more kills: let the last consumers drain the queues
                # The slots' last consumers may all be on one queue (1 run in
                # 32): one more consumer per queue, so that every queue drains.
                for n, queue in enumerate(QUEUES):
                    consumers.start_soon(
                        queue_consumer, port, 100 + n, ledger, churn, finish, queue
                    )
                with anyio.move_on_after(15):  # then the checks say what is missing
                    while not ledger.accepted <= {d.key for d in ledger.deliveries}:
                        await anyio.sleep(0.1)
                    seen = -1
                    while broker.stats["queued"] or seen != len(ledger.deliveries):
                        seen = len(ledger.deliveries)  # quiet for 0.5 s: every ACK is out
                        await anyio.sleep(0.5)
                finish.set()
        with anyio.move_on_after(5):
            while broker.stats["sessions"]:
                await anyio.sleep(0.02)
        report(broker, ledger)
        await still_serving(port)
        check_queue_ledger(broker, ledger)


def report(broker: Broker, ledger: Ledger) -> None:
    print(
        f"seed {SEED}: accepted {len(ledger.accepted)}, sent {len(ledger.sent)}, "
        f"deliveries {len(ledger.deliveries)}, consumer kills {ledger.kills}, "
        f"polite leaves {ledger.leaves}, NACKs {ledger.nacks}, transactions "
        f"{ledger.transactions}, producer resets {ledger.producer_resets}; {broker.stats}"
    )


def check_queue_ledger(broker: Broker, ledger: Ledger) -> None:
    assert ledger.accepted and ledger.kills, f"seed={SEED}: the soak did nothing"
    delivered: dict[Key, list[Delivery]] = defaultdict(list)
    for d in ledger.deliveries:
        assert d.key in ledger.sent, f"seed={SEED}: {d.key} was never sent"
        delivered[d.key].append(d)
    lost = ledger.accepted - set(delivered)
    assert not lost, (
        f"seed={SEED}: {len(lost)} accepted messages never delivered: {sorted(lost)[:5]}"
    )
    for key, copies in delivered.items():
        again = [c for c in copies[1:] if not c.redelivered]
        assert not again, f"seed={SEED}: {key} delivered again without redelivered:true"
        assert len({c.message_id for c in copies}) == 1, f"seed={SEED}: {key} has two ids"
    check_order(ledger)
    # The broker's own books agree: it published what it acknowledged (and
    # perhaps some of what reset producers left unacknowledged), delivered each
    # once, and every further delivery is a redelivery.
    stats = broker.stats
    assert len(ledger.accepted) <= stats["published"] <= len(ledger.sent), stats
    assert stats["delivered"] - stats["redelivered"] == stats["published"], stats
    assert broker.stats["queued"] == 0
    assert broker.stats["sessions"] == 0  # every consumer and producer has gone


# -- the topic soak --------------------------------------------------------------------


TOPICS = ["/topic/soak.a", "/topic/soak.b"]


async def topic_subscriber(
    raw: RawClient, name: str, mode: str, ledger: Ledger, stop: anyio.Event
) -> None:
    """Read (and acknowledge, in ``mode``) until ``stop``."""
    last_ack, unacked = "", 0
    while not stop.is_set():
        try:
            frame = await raw.frame(timeout=0.1)
        except TimeoutError:
            if unacked:
                await raw.send("ACK", [("id", last_ack)])
                unacked = 0
            continue
        if frame is None:
            return
        assert frame.command == "MESSAGE", (SEED, frame)
        ledger.record(name, frame)
        if mode != "auto":
            last_ack, unacked = frame.get("ack") or "", unacked + 1
            if mode == "client-individual" or unacked >= 10:
                await raw.send("ACK", [("id", last_ack)])
                unacked = 0


async def churning_subscriber(port: int, slot: int, ledger: Ledger, stop: anyio.Event) -> None:
    rng = rng_for(f"topic-churn-{slot}")
    incarnation = 0
    while not stop.is_set():
        name = f"t{slot}.{incarnation}"
        incarnation += 1
        raw = await RawClient.connected(port)
        mode = rng.choice(MODES)
        await raw.subscribe(rng.choice([*TOPICS, "/topic/soak.*"]), "t", ack=mode)
        with anyio.move_on_after(rng.uniform(0.2, 2.0)):
            await topic_subscriber(raw, name, mode, ledger, stop)
        ledger.kills += 1
        await (raw.reset() if rng.random() < 0.5 else raw.aclose())


async def test_soak_topics(anyio_backend: str) -> None:
    print(f"soak seed {SEED} (STOMP_SOAK_SEED to replay), {SECONDS} s")
    ledger = Ledger()
    stop, readers_stop = anyio.Event(), anyio.Event()
    seconds = SECONDS * 2 / 3
    # Integrity, not the slow-consumer policy (test_faults.py has that): room
    # enough that a reader slowed by a busy machine is never "full".
    async with embedded(max_pending_bytes=1 << 30, max_memory_bytes=1 << 30) as broker:
        port = tcp_port(broker)
        live = {
            "live-a": ("/topic/soak.a", "auto"),
            "live-b": ("/topic/soak.b", "client-individual"),
            "live-pattern": ("/topic/soak.*", "client"),
            "live-deep": ("/topic/**", "auto"),
        }
        with anyio.fail_after(seconds + 60):
            async with anyio.create_task_group() as readers:
                for name, (destination, mode) in live.items():
                    raw = await RawClient.connected(port)
                    await raw.subscribe(destination, "live", ack=mode)
                    readers.start_soon(topic_subscriber, raw, name, mode, ledger, readers_stop)
                for slot in range(4):
                    readers.start_soon(churning_subscriber, port, slot, ledger, stop)
                async with anyio.create_task_group() as producers:
                    for p in range(3):
                        producers.start_soon(producer, port, f"p{p}", TOPICS, ledger, stop)
                    await anyio.sleep(seconds)
                    stop.set()
                with anyio.move_on_after(15):  # what is in flight to the live ones
                    while True:
                        got = {(d.consumer, d.key) for d in ledger.deliveries}
                        if all(
                            (name, key) in got
                            for name, (destination, _) in live.items()
                            for key in ledger.accepted
                            if matches(destination, key[1])
                        ):
                            break
                        await anyio.sleep(0.1)
                readers_stop.set()
        report(broker, ledger)
        assert ledger.accepted and ledger.kills, f"seed={SEED}: the soak did nothing"
        assert broker.stats["dropped"] == 0, f"seed={SEED}: copies dropped"
        assert len(ledger.accepted) <= broker.stats["published"] <= len(ledger.sent)
        for name, (destination, _) in live.items():
            mine = [d for d in ledger.deliveries if d.consumer == name]
            keys = [d.key for d in mine]
            assert len(keys) == len(set(keys)), f"seed={SEED}: {name} got a copy twice"
            wanted = {k for k in ledger.accepted if matches(destination, k[1])}
            assert wanted <= set(keys), f"seed={SEED}: {name} missed {len(wanted - set(keys))}"
            assert not any(d.redelivered for d in mine)
        for d in ledger.deliveries:
            assert d.key in ledger.sent, f"seed={SEED}: {d.key} was never sent"
        churned = defaultdict(list)
        for d in ledger.deliveries:
            churned[d.consumer].append(d.key)
        for name, keys in churned.items():
            assert len(keys) == len(set(keys)), f"seed={SEED}: {name} got a copy twice"
        check_order(ledger, contiguous=True)
        await still_serving(port)


def matches(subscription: str, destination: str) -> bool:
    if subscription == "/topic/**":
        return True
    if subscription == "/topic/soak.*":
        return destination.startswith("/topic/soak.")
    return subscription == destination
