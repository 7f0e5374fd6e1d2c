"""A durable queue and a durable topic subscription across a broker restart.

The program starts a :class:`~stomp_proto.broker.Broker` with a store (a
SQLite file in a temporary directory) on a free port, makes a durable topic
subscription and leaves, sends persistent messages (each RECEIPT means the
message is on disk) and one that is not persistent, and stops the broker. A
second broker on the same file gives the persistent messages back, marked
``redelivered:true``; the other one is gone. Run it with
``python docs/examples/durable_queue.py`` (needs ``pip install
'stomp-proto[broker]'``).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from stomp_proto.asyncio import connect
from stomp_proto.broker import Broker

PERSISTENT = [("persistent", "true")]
#: RabbitMQ's headers for a durable topic subscription (it needs an id too).
DURABLE = [("durable", "true"), ("auto-delete", "false")]


def port(broker: Broker) -> int:
    return next(port for kind, _, port in broker.addresses if kind == "tcp")


async def main(store: Path) -> None:
    async with Broker(tcp=[("127.0.0.1", 0)], ws=[], store=store) as broker:
        async with connect("127.0.0.1", port(broker), login="alice") as client:
            # A durable subscription: kept while alice is away (and across restarts).
            news = await client.subscribe("/topic/news", id="news", headers=DURABLE)
            await news.unsubscribe()  # a plain UNSUBSCRIBE keeps it
            for n in range(3):  # receipt=True: send() returns once it is stored
                await client.send("/queue/jobs", f"job {n}", headers=PERSISTENT, receipt=True)
            await client.send("/queue/jobs", "not persistent", receipt=True)
            await client.send("/topic/news", "while you were away", headers=PERSISTENT)
        print(f"first broker: {broker.stats['queued']} waiting")

    async with Broker(tcp=[("127.0.0.1", 0)], ws=[], store=store) as broker:
        print(f"second broker: {broker.stats['queued']} waiting")
        async with connect("127.0.0.1", port(broker), login="alice") as client:
            jobs = await client.subscribe("/queue/jobs", ack="client-individual")
            for _ in range(3):
                job = await jobs.get()
                print(job.body.decode(), "redelivered:", job.header("redelivered"))
                await job.ack(receipt=True)  # once its RECEIPT is in, it is gone for good
            news = await client.subscribe("/topic/news", id="news", headers=DURABLE)
            print("news:", (await news.get()).body.decode())


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(Path(directory) / "broker.db"))
