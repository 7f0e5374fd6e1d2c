"""The reference broker embedded in an asyncio program.

The program starts a :class:`~stomp_proto.broker.Broker` on free ports
(port 0), connects a client over WebSocket, subscribes it to every stock's
price with the pattern ``/topic/price.stock.*``, publishes three prices from
application code with :meth:`Broker.publish` (what Spring's
SimpMessagingTemplate does), reads them, prints the broker's statistics and
exits. Run it with ``python docs/examples/broker_embedded.py`` (needs
``pip install 'stomp-proto[asyncio,websocket]'``).
"""

from __future__ import annotations

import asyncio
import json

from stomp_proto.asyncio import connect
from stomp_proto.broker import Broker


async def main() -> None:
    # Port 0: the system picks free ports; broker.addresses says which.
    broker = Broker(tcp=[("127.0.0.1", 0)], ws=[("127.0.0.1", 0, "/ws")])
    async with broker:  # serving from here; leaving the block stops it
        ws_port = next(port for kind, _, port in broker.addresses if kind == "ws")
        async with connect(f"ws://127.0.0.1:{ws_port}/ws") as client:
            # subscribe() waits for the RECEIPT: the subscription is live now.
            prices = await client.subscribe("/topic/price.stock.*", ack="client-individual")
            for ticker, price in [("ACME", 12.5), ("INITECH", 99.0), ("ACME", 12.75)]:
                body = json.dumps({"ticker": ticker, "price": price})
                copies = broker.publish(
                    f"/topic/price.stock.{ticker}", body, content_type="application/json"
                )
                print(f"published {ticker} to {copies} subscriber(s)")
            for _ in range(3):
                message = await prices.get()
                print(f"{message.destination}: {json.loads(message.body)['price']}")
                await message.ack()
        stats = broker.stats
        print(f"published {stats['published']}, delivered {stats['delivered']}")


if __name__ == "__main__":
    asyncio.run(main())
