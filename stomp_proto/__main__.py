"""``python -m stomp_proto``: a client and a server talking in memory.

It walks a STOMP 1.2 session end to end with no socket: the client connects
with heart-beats, subscribes with a receipt, the server delivers a stock
price, the client acknowledges it, and both say goodbye with DISCONNECT and
its RECEIPT. Every byte that crosses the "wire" is printed.
"""

from __future__ import annotations

import json
import sys

from . import (
    NEED_DATA,
    PAUSED,
    ClientConnection,
    Connect,
    ConnectionClosed,
    Disconnect,
    Event,
    Message,
    ServerConnection,
    Subscribe,
)


def _wire(direction: str, data: bytes) -> None:
    print(f"{direction} {data!r}")


def _deliver(data: bytes, to: ClientConnection | ServerConnection, name: str) -> list[Event]:
    to.receive_data(data)
    events: list[Event] = []
    while True:
        event = to.next_event()
        if event is NEED_DATA or event is PAUSED:
            return events
        print(f"    {name} got {event}")
        events.append(event)
        if isinstance(event, ConnectionClosed):
            return events


def main() -> int:
    """Run the demo; return the process exit status."""
    client = ClientConnection()
    server = ServerConnection(heart_beat=(10_000, 10_000))

    data = client.send(Connect(host="localhost", heart_beat=(10_000, 10_000)))
    _wire("C>S", data)
    _deliver(data, server, "server")

    data = server.send(server.accept(server="stomp-proto-demo/0.1"))
    _wire("S>C", data)
    _deliver(data, client, "client")
    print(f"    negotiated STOMP {client.version}, heart-beats {client.heartbeat_intervals} ms")

    data = client.send(
        Subscribe(destination="/topic/price.stock.*", id="0", ack="client", receipt="sub-0")
    )
    _wire("C>S", data)
    (subscribe,) = _deliver(data, server, "server")

    price = json.dumps({"ticker": "ACME", "price": 101.25}).encode()
    data = server.send(subscribe.make_receipt()) + server.send(
        Message(
            destination="/topic/price.stock.ACME",
            message_id="m-1",
            subscription="0",
            ack="a-1",
            content_type="application/json",
            body=price,
        )
    )
    _wire("S>C", data)
    events = _deliver(data, client, "client")
    message = events[-1]
    assert isinstance(message, Message)

    data = client.send(message.make_ack())
    _wire("C>S", data)
    _deliver(data, server, "server")

    data = client.send(Disconnect(receipt="bye"))
    _wire("C>S", data)
    (disconnect,) = _deliver(data, server, "server")
    data = server.send(disconnect.make_receipt())
    _wire("S>C", data)
    _deliver(data, client, "client")
    print(f"client state: {client.state.name}, server state: {server.state.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
