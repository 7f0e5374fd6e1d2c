"""A stock-ticker STOMP server and a client in one asyncio program.

The server is a tiny trade desk: a client subscribes to price updates on
``/topic/price.stock.*`` and sends trades to ``/app/trade``; each trade comes
back as a price update on ``/topic/price.stock.<TICKER>``. The server listens
on a free port (port 0); the client connects to it, trades, reads the prices,
ACKs them and disconnects. Run it with ``python docs/examples/asyncio_echo.py``
(needs ``pip install 'stomp-proto[asyncio]'``).
"""

from __future__ import annotations

import asyncio
import itertools
import json

import anyio

import stomp_proto as stomp
from stomp_proto.asyncio import ServerSession, connect, serve


def matches(pattern: str, destination: str) -> bool:
    """``*`` stands for one dot-separated word, as in RabbitMQ's topic destinations."""
    words, names = pattern.split("."), destination.split(".")
    if len(words) != len(names):
        return False
    return all(word in ("*", name) for word, name in zip(words, names, strict=True))


async def trade_desk(session: ServerSession) -> None:
    """Serve one client: turn each trade into a price update for its subscribers."""
    hello = await session.next_event()  # the CONNECT: check hello.login here
    assert isinstance(hello, stomp.Connect)
    await session.accept(server="trade-desk/1.0")
    subscriptions: dict[str, stomp.Subscribe] = {}  # by subscription id
    serial = itertools.count(1)
    async for event in session:  # ends when the client disconnects
        if isinstance(event, stomp.Subscribe):
            subscriptions[event.id or event.destination] = event
        elif isinstance(event, stomp.Unsubscribe):
            subscriptions.pop(event.id or "", None)
        elif isinstance(event, stomp.Send) and event.destination == "/app/trade":
            trade = json.loads(event.body)
            topic = f"/topic/price.stock.{trade['ticker']}"
            for key, sub in subscriptions.items():
                if matches(sub.destination, topic):
                    n = next(serial)
                    await session.send(
                        stomp.Message(
                            destination=topic,
                            message_id=f"price-{n}",
                            subscription=key,
                            ack=None if sub.ack == "auto" else f"ack-{n}",
                            content_type="application/json",
                            body=json.dumps({"price": trade["price"]}).encode(),
                        )
                    )
        # Any client frame may ask for a RECEIPT, including the DISCONNECT.
        if getattr(event, "receipt", None) is not None:
            await session.send(event.make_receipt())


async def trader(port: int) -> None:
    """Subscribe to every stock's price, place three trades, read the prices."""
    async with connect("127.0.0.1", port, login="trader", passcode="secret") as client:
        assert client.connected is not None
        print(f"connected: STOMP {client.version} to {client.connected.server}")
        prices = await client.subscribe("/topic/price.stock.*", ack="client-individual")
        trades = [("ACME", 12.5), ("INITECH", 99.0), ("ACME", 12.75)]
        for ticker, price in trades:
            trade = json.dumps({"ticker": ticker, "price": price})
            await client.send("/app/trade", trade, content_type="application/json")
        received = 0
        async for message in prices:
            print(f"{message.destination}: {json.loads(message.body)['price']}")
            await message.ack()
            received += 1
            if received == len(trades):
                break
    print("disconnected")


async def main() -> None:
    async with anyio.create_task_group() as tg:
        # start() waits until the server listens and returns the port it bound.
        port = await tg.start(serve, trade_desk, "127.0.0.1", 0)
        await trader(port)
        tg.cancel_scope.cancel()  # stop serving


if __name__ == "__main__":
    asyncio.run(main())
