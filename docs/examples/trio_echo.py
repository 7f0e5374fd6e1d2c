"""A STOMP echo server and a client in one trio program.

The server delivers every SEND back to the client's subscriptions on the same
destination. The client reads in one task and publishes from another, both in
one nursery. Run it with ``python docs/examples/trio_echo.py`` (needs
``pip install 'stomp-proto[trio]'``).
"""

from __future__ import annotations

import itertools

import trio

import stomp_proto as stomp
from stomp_proto.trio import Client, ServerSession, Subscription, connect, serve


async def echo(session: ServerSession) -> None:
    """Serve one client: each SEND goes back to the subscribers of its destination."""
    await session.next_event()  # the CONNECT
    await session.accept(server="echo/1.0")
    subscriptions: dict[str, str] = {}  # subscription id -> destination
    serial = itertools.count(1)
    async for event in session:
        if isinstance(event, stomp.Subscribe):
            subscriptions[event.id or event.destination] = event.destination
        elif isinstance(event, stomp.Unsubscribe):
            subscriptions.pop(event.id or "", None)
        elif isinstance(event, stomp.Send):
            for key, destination in subscriptions.items():
                if destination == event.destination:
                    await session.send(
                        stomp.Message(
                            destination=destination,
                            message_id=f"m{next(serial)}",
                            subscription=key,
                            content_type=event.content_type,
                            body=event.body,
                        )
                    )
        if getattr(event, "receipt", None) is not None:
            await session.send(event.make_receipt())


async def listen(sub: Subscription, count: int) -> None:
    """Print ``count`` messages from ``sub``."""
    async for message in sub:
        print(f"got {message.text()!r} on {message.destination}")
        count -= 1
        if count == 0:
            return


async def publish(client: Client, lines: list[str]) -> None:
    """Send each line, and wait for the server's RECEIPT of the last one."""
    for line in lines:
        await client.send("/queue/echo", line)
    await client.send("/queue/echo", "over", receipt=True)


async def main() -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve, echo, "127.0.0.1", 0)
        with trio.fail_after(10):  # trio's own timeouts work around any call
            async with connect("127.0.0.1", port) as client:
                sub = await client.subscribe("/queue/echo")
                async with trio.open_nursery() as tasks:
                    tasks.start_soon(listen, sub, 3)
                    tasks.start_soon(publish, client, ["hello", "trio"])
        print("disconnected")
        nursery.cancel_scope.cancel()  # stop serving


if __name__ == "__main__":
    trio.run(main)
