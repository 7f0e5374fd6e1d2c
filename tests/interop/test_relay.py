"""Two of our nodes relaying to one real upstream broker (RabbitMQ 3.10, ActiveMQ 5.17).

Each test starts two embedded :class:`~stomp_proto.broker.Broker` nodes in
this process (one is a ``stomp-proto broker --relay`` subprocess in the
command-line test), each relaying ``/topic`` and ``/queue`` to the session's
broker, and connects our asyncio client to the nodes, never to the upstream:
what a client on node A sees, node B sent through the upstream. ``broker``
runs a test against both upstreams, ``rabbitmq`` against RabbitMQ only.
Destinations are unique per test.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest

from stomp_proto.app import StompApp
from stomp_proto.asyncio import Client, StompError, connect
from stomp_proto.broker import Broker, Relay, RelayAvailability

from .brokers import HOST, free_ports
from .brokers import Broker as Peer

pytestmark = pytest.mark.anyio
_counter = itertools.count()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def dest(kind: str) -> str:
    return f"/{kind}/relay-{next(_counter)}-{uuid.uuid4().hex[:8]}"


def upstream_url(peer: Peer) -> str:
    return f"stomp://{peer.login}:{peer.passcode}@{peer.host}:{peer.stomp_port}"


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


@asynccontextmanager
async def nodes(
    peer: Peer,
    count: int = 2,
    *,
    app: Callable[[], StompApp] | None = None,
    **options: Any,
) -> AsyncIterator[list[Broker]]:
    """``count`` nodes relaying to ``peer``, each with every upstream connection up."""
    options.setdefault("connections", 2)
    async with AsyncExitStack() as stack:
        started = []
        for _ in range(count):
            relay = Relay([upstream_url(peer)], **options)
            if app is not None:
                broker = app().broker(tcp=[(HOST, 0)], ws=[], relay=relay)
            else:
                broker = Broker(tcp=[(HOST, 0)], ws=[], relay=relay)
            started.append(await stack.enter_async_context(broker))
        await until(lambda: all(b.relay is not None and b.relay.available for b in started))
        yield started


def client(node: Broker, **options: Any) -> Client:
    options.setdefault("receipt_timeout", 20)
    return connect(HOST, node.addresses[0][2], **options)


# -- publish/subscribe and point to point across nodes --------------------------------------


async def test_a_topic_published_on_one_node_reaches_a_subscriber_on_the_other(
    broker: Peer,
) -> None:
    topic = dest("topic")
    async with nodes(broker) as (a, b), client(a) as on_a, client(b) as on_b:
        exact = await on_a.subscribe(topic + ".ACME")
        pattern = await on_a.subscribe(topic + ".*")
        local = await on_b.subscribe(topic + ".ACME")
        await on_b.send(topic + ".ACME", "12.5", receipt=True, headers=[("k", "v")])
        await on_b.send(topic + ".INITECH", "99", receipt=True)
        with anyio.fail_after(15):
            got = await exact.get()
            assert (got.text(), got.destination, got.header("k")) == ("12.5", topic + ".ACME", "v")
            assert (await local.get()).text() == "12.5"
            seen = [(await pattern.get()).destination for _ in range(2)]
        assert seen == [topic + ".ACME", topic + ".INITECH"]
        # Node A has one upstream subscription per destination, however many clients.
        assert a.relay is not None and a.relay.stats["received"] == 3


async def test_server_code_publishes_through_the_system_connection(broker: Peer) -> None:
    topic = dest("topic")
    async with nodes(broker) as (a, b), client(b) as on_b:
        sub = await on_b.subscribe(topic)
        assert a.publish(topic, "from server code") == 0  # copies are made upstream
        with anyio.fail_after(15):
            assert (await sub.get()).text() == "from server code"


async def test_queue_consumers_on_both_nodes_share_one_queue(broker: Peer) -> None:
    queue = dest("queue")
    total = 200
    got: list[tuple[str, str]] = []
    async with nodes(broker) as (a, b), client(a) as on_a, client(b) as on_b:
        subs = {
            "a": await on_a.subscribe(
                queue, ack="client-individual", headers=[("prefetch-count", "5")]
            ),
            "b": await on_b.subscribe(
                queue, ack="client-individual", headers=[("prefetch-count", "5")]
            ),
        }

        async def consume(name: str) -> None:
            async for message in subs[name]:
                got.append((name, message.text()))
                await message.ack()

        async with anyio.create_task_group() as tg:
            for name in subs:
                tg.start_soon(consume, name)
            for i in range(total):
                await (on_a if i % 2 else on_b).send(queue, f"m{i}", receipt=i % 10 == 9)
            await until(lambda: len(got) >= total, 30)
            await anyio.sleep(0.3)  # nothing more comes: no duplicates
            tg.cancel_scope.cancel()
    bodies = [body for _, body in got]
    assert sorted(bodies) == sorted(f"m{i}" for i in range(total))  # none lost, none twice
    assert {name for name, _ in got} == {"a", "b"}  # both nodes consumed


# -- acknowledgements, receipts, transactions -----------------------------------------------


async def test_sessions_sharing_an_upstream_connection_keep_their_own_acks(
    broker: Peer,
) -> None:
    # One pool connection carries both sessions. A cumulative (client-mode)
    # ACK of one must not settle the other's messages: on RabbitMQ, whose
    # client mode is basic.ack multiple=true over the whole channel, it would.
    qx, qy = dest("queue"), dest("queue")
    async with nodes(broker, 1, connections=1) as (a,):
        async with client(a) as x, client(a) as y:
            sub_x = await x.subscribe(qx, ack="client")
            sub_y = await y.subscribe(qy, ack="client")
            for i in range(2):
                await x.send(qx, f"x{i}", receipt=True)
                await x.send(qy, f"y{i}", receipt=True)
            with anyio.fail_after(15):
                got_y = [await sub_y.get() for _ in range(2)]
                got_x = [await sub_x.get() for _ in range(2)]
            assert [m.text() for m in got_y] == ["y0", "y1"]
            await got_x[1].ack(receipt=True)  # x0 and x1, and nothing of y's
        async with client(a) as z:
            again = await z.subscribe(qy, ack="client-individual")
            with anyio.fail_after(20):
                back = [await again.get() for _ in range(2)]
            assert [m.text() for m in back] == ["y0", "y1"]
            for m in back:
                await m.ack(receipt=True)
            gone = await z.subscribe(qx)
            with anyio.move_on_after(1.0):
                extra = await gone.get()
                pytest.fail(f"an acknowledged message came back: {extra.text()}")


async def test_nack_requeues_through_the_relay(rabbitmq: Peer) -> None:
    # (ActiveMQ applies its redelivery policy to a STOMP NACK: not tested here.)
    queue = dest("queue")
    async with nodes(rabbitmq) as (a, b), client(a) as on_a, client(b) as on_b:
        sub = await on_a.subscribe(queue, ack="client-individual")
        for i in range(2):
            await on_b.send(queue, f"m{i}", receipt=True)
        with anyio.fail_after(15):
            first = [await sub.get() for _ in range(2)]
        await first[0].ack(receipt=True)
        await first[1].nack(receipt=True)  # back to the queue, redelivered
        with anyio.fail_after(20):
            again = await sub.get()
        assert again.text() == "m1" and again.header("redelivered") == "true"
        await again.ack(receipt=True)


async def test_unacknowledged_messages_go_back_upstream(broker: Peer) -> None:
    queue = dest("queue")
    async with nodes(broker) as (a, b), client(a) as on_a:
        sub = await on_a.subscribe(queue, ack="client")
        async with client(b) as on_b:
            for i in range(3):
                await on_b.send(queue, f"m{i}", receipt=True)
        with anyio.fail_after(15):
            first = [await sub.get() for _ in range(3)]
        await first[1].ack(receipt=True)  # cumulative: m0 and m1
        await sub.unsubscribe()  # m2 was never acknowledged: it goes back upstream
        async with client(b) as on_b:
            other = await on_b.subscribe(queue, ack="client-individual")
            with anyio.fail_after(20):
                rest = await other.get()
            assert rest.text() == "m2"
            await rest.ack(receipt=True)
            with anyio.move_on_after(1.0):
                extra = await other.get()
                pytest.fail(f"an acknowledged message came back: {extra.text()}")


async def test_transactions_commit_and_abort_end_to_end(broker: Peer) -> None:
    queue, out = dest("queue"), dest("queue")
    async with nodes(broker) as (a, b), client(a) as on_a, client(b) as on_b:
        jobs = await on_a.subscribe(queue, ack="client-individual")
        results = await on_b.subscribe(out)
        await on_b.send(queue, "job", receipt=True)
        with anyio.fail_after(15):
            job = await jobs.get()
        # ABORT: the result is not sent, the job not acknowledged.
        tx = await on_a.begin()
        await tx.send(out, "aborted result")
        await tx.ack(job)
        await tx.abort(receipt=True)
        # COMMIT: both at once, the COMMIT's RECEIPT after the upstream's.
        async with on_a.transaction() as tx:
            await tx.send(out, "result")
            await tx.ack(job)
        with anyio.fail_after(15):
            assert (await results.get()).text() == "result"
        await jobs.unsubscribe()
        with anyio.move_on_after(1.5):
            extra = await results.get()
            pytest.fail(f"the aborted SEND arrived: {extra.text()}")
    # The job was acknowledged by the COMMIT: nobody gets it again.
    async with nodes(broker, 1) as (c,), client(c) as on_c:
        sub = await on_c.subscribe(queue)
        with anyio.move_on_after(1.5):
            extra = await sub.get()
            pytest.fail(f"the committed ACK did not take: {extra.text()}")


async def test_receipts_come_after_the_upstream_confirmed(rabbitmq: Peer) -> None:
    queue = dest("queue")
    async with nodes(rabbitmq) as (a, b), client(a) as on_a, client(b) as on_b:
        # The SUBSCRIBE's RECEIPT says the upstream subscription is live: a
        # message sent from the other node right after it is not lost.
        topic = dest("topic")
        sub = await on_a.subscribe(topic)
        await on_b.send(topic, "right after", receipt=True)
        with anyio.fail_after(15):
            assert (await sub.get()).text() == "right after"
        # SEND, ACK and COMMIT receipts are the upstream's, relayed.
        relay = b.relay
        assert relay is not None
        sent = relay.stats["sent"]
        await on_b.send(queue, "persistent", receipt=True, headers=[("persistent", "true")])
        assert relay.stats["sent"] == sent + 1


async def test_client_heart_beats_are_the_nodes_not_the_upstreams(rabbitmq: Peer) -> None:
    # The upstream connections beat every 4 s; clients get the node's 1 s.
    async with AsyncExitStack() as stack:
        relay = Relay([upstream_url(rabbitmq)], heart_beat=(4000, 4000), connections=1)
        node = await stack.enter_async_context(
            Broker(tcp=[(HOST, 0)], ws=[], relay=relay, heart_beat=(1000, 1000))
        )
        await until(lambda: relay.available)
        c = await stack.enter_async_context(client(node, heart_beat=(1000, 1000)))
        conn = c._conn
        assert conn is not None and conn.heartbeat_intervals == (1000, 1000)
        # RabbitMQ echoes the relay's own values on its connections.
        assert relay.connections[1].up


# -- user destinations across nodes ---------------------------------------------------------


def user_app() -> StompApp:
    app = StompApp(users={"ann": "pw", "bob": "pw"})

    @app.message("/alert", send_to_user="/queue/alerts")
    def alert(message: Any) -> str:
        return f"alert: {message.text()}"

    return app


async def test_a_user_with_sessions_on_both_nodes_gets_a_user_message_on_both(
    rabbitmq: Peer,
) -> None:
    async with (
        nodes(rabbitmq, app=user_app) as (a, b),
        client(a, login="ann", passcode="pw") as ann_a,
        client(b, login="ann", passcode="pw") as ann_b,
        client(b, login="bob", passcode="pw") as bob_b,
    ):
        subs = [
            await ann_a.subscribe("/user/queue/alerts"),
            await ann_b.subscribe("/user/queue/alerts"),
        ]
        bob = await bob_b.subscribe("/user/queue/alerts")
        # A client SEND to /user/ann/... on node B; server code on node A.
        await bob_b.send("/user/ann/queue/alerts", "from bob", receipt=True)
        with anyio.fail_after(15):
            for sub in subs:
                message = await sub.get()
                assert (message.text(), message.destination) == (
                    "from bob",
                    "/user/queue/alerts",
                )
                assert not any(k.startswith("x-stomp-proto") for k, _ in message.headers)
        # A handler's @SendToUser reply goes to every session of the user.
        await ann_b.send("/app/alert", "fire", receipt=True)
        with anyio.fail_after(15):
            for sub in subs:
                assert (await sub.get()).text() == "alert: fire"
        with anyio.move_on_after(1.0):
            extra = await bob.get()
            pytest.fail(f"bob got ann's message: {extra.text()}")
        # Exactly once per session: nothing else is on its way.
        with anyio.move_on_after(1.0):
            extra = await subs[0].get()
            pytest.fail(f"a second copy: {extra.text()}")


# -- availability and the command line ------------------------------------------------------


async def test_availability_is_visible_to_application_code(rabbitmq: Peer) -> None:
    events: list[RelayAvailability] = []
    async with nodes(rabbitmq, 1, on_availability=[events.append]) as (_a,):
        assert {e.connection for e in events if e.available} == {"system", "pool-1", "pool-2"}
        assert all(e.upstream == f"stomp://{HOST}:{rabbitmq.stomp_port}" for e in events)
    # A relay to nowhere says so, naming the address, and keeps trying.
    (port,) = free_ports(1)
    refused: list[RelayAvailability] = []
    relay = Relay(
        [f"stomp://{HOST}:{port}"],
        on_availability=[refused.append],
        connections=1,
        send_timeout=1.0,
    )
    async with Broker(tcp=[(HOST, 0)], ws=[], relay=relay) as node, client(node) as c:
        await until(lambda: len(refused) >= 2)
        assert not refused[0].available and str(port) in refused[0].upstream
        assert refused[0].reason
        # Subscribing works meanwhile (live once the upstream is); a SEND
        # waits send_timeout, then gets ERROR: never silence.
        await c.subscribe(dest("topic"), receipt=False)
        with anyio.fail_after(10), pytest.raises(StompError, match="unavailable within 1 s"):
            await c.send(dest("queue"), "nowhere", receipt=True)


async def test_tls_upstreams_are_verified(rabbitmq_tls: Peer) -> None:
    from .brokers import client_tls_context

    assert rabbitmq_tls.ca_file is not None
    url = f"stomps://guest:guest@{HOST}:{rabbitmq_tls.tls_port}"
    verified = Relay([url], ssl=client_tls_context(rabbitmq_tls.ca_file), connections=1)
    async with Broker(tcp=[(HOST, 0)], ws=[], relay=verified) as node:
        await until(lambda: verified.available)
        async with client(node) as c:
            sub = await c.subscribe(dest("topic") + ".tls")
            await c.send(sub.destination, "over TLS", receipt=True)
            with anyio.fail_after(15):
                assert (await sub.get()).text() == "over TLS"
    # Without the test CA, the system's trust store does not know the certificate.
    events: list[RelayAvailability] = []
    unverified = Relay([url], on_availability=[events.append], connections=1)
    async with Broker(tcp=[(HOST, 0)], ws=[], relay=unverified):
        await until(lambda: bool(events))
        assert not unverified.available
        assert "CERTIFICATE_VERIFY_FAILED" in (events[0].reason or "")


async def test_the_command_line_relays(rabbitmq: Peer, tmp_path: Any) -> None:
    topic = dest("topic")
    (port,) = free_ports(1)
    log = tmp_path / "node.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stomp_proto.broker",
                "--tcp",
                f"{HOST}:{port}",
                "--ws",
                f"{HOST}:0",
                "--relay",
                f"stomp://{HOST}:1",  # refused: the next address is used
                "--relay",
                upstream_url(rabbitmq),
                "--relay-connections",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        async with nodes(rabbitmq, 1) as (a,), client(a) as on_a:
            sub = await on_a.subscribe(topic)
            with anyio.fail_after(30):
                while True:
                    try:
                        async with connect(HOST, port, receipt_timeout=20) as on_cli:
                            await on_cli.send(topic, "via the command line", receipt=True)
                        break
                    except (OSError, StompError):
                        await anyio.sleep(0.2)
                assert (await sub.get()).text() == "via the command line"
    finally:
        proc.terminate()
        proc.wait(20)
    text = log.read_text()
    assert f"relay: pool-1 connected to stomp://{HOST}:{rabbitmq.stomp_port}" in text
    assert f"unavailable (stomp://{HOST}:1)" in text


async def test_subscribe_on_activemq_names_subscriptions_as_activemq_wants(activemq: Peer) -> None:
    # ActiveMQ: a '/' in a name is fine, '>' is its wildcard for the rest.
    topic = dest("topic")
    async with nodes(activemq) as (a, b), client(a) as on_a, client(b) as on_b:
        deep = await on_a.subscribe(topic + ".**")
        await on_b.send(topic + ".x/y.z", "deep", receipt=True)
        with anyio.fail_after(15):
            assert (await deep.get()).destination == topic + ".x/y.z"
