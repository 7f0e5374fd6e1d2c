"""A STOMP application in the style of Spring's @MessageMapping: docs/application.rst.

Run it from a checkout with ``python docs/examples/stomp_app.py``: it serves
the application on free ports, connects a client as fabrice, and prints what
the client sees.
"""

from __future__ import annotations

import json

import anyio

from stomp_proto.app import AppMessage, StompApp, authenticated
from stomp_proto.asyncio import connect

app = StompApp(users={"fabrice": "fab123", "paulson": "bond"})
positions = {"fabrice": {"MMM": 10}, "paulson": {}}


@app.subscribe("/positions")  # SUBSCRIBE /app/positions: answered once, to that subscription
def current_positions(message: AppMessage) -> list[dict[str, object]]:
    held = positions[message.user or ""]
    return [{"ticker": ticker, "shares": shares} for ticker, shares in held.items()]


@app.message("/trade", send_to_user="/queue/position-updates")  # SEND /app/trade
def trade(message: AppMessage) -> dict[str, object]:
    order = message.json()
    if order["shares"] <= 0:
        raise ValueError("shares must be positive")
    held = positions[message.user or ""]
    held[order["ticker"]] = held.get(order["ticker"], 0) + order["shares"]
    return {"ticker": order["ticker"], "shares": held[order["ticker"]]}


app.allow("*", "/app/**", when=authenticated)  # rules are tried in order
app.deny("SUBSCRIBE", "/topic/admin.**")


async def main() -> None:
    async with app.broker(tcp=[("127.0.0.1", 0)], ws=[]) as broker:
        port = broker.addresses[0][2]
        app.send("/topic/price.stock.MMM", {"ticker": "MMM", "price": 129.45})  # nobody yet
        async with connect("127.0.0.1", port, login="fabrice", passcode="fab123") as client:
            initial = await client.subscribe("/app/positions")
            print("positions:", (await initial.get()).text())
            updates = await client.subscribe("/user/queue/position-updates")
            errors = await client.subscribe("/user/queue/errors")
            prices = await client.subscribe("/topic/price.stock.*")

            await client.send("/app/trade", json.dumps({"ticker": "MMM", "shares": 5}))
            print("update:", (await updates.get()).text())
            await client.send("/app/trade", json.dumps({"ticker": "MMM", "shares": -1}))
            print("error:", (await errors.get()).text())

            app.send("/topic/price.stock.MMM", {"ticker": "MMM", "price": 130.1})
            message = await prices.get()
            print("price:", message.destination, message.text())


if __name__ == "__main__":
    anyio.run(main)
