"""STOMP clients and servers on trio.

``pip install 'stomp-proto[trio]'``. The adapter is written once against
AnyIO, so this module and :mod:`stomp_proto.asyncio` offer the same API::

    import trio
    from stomp_proto.trio import connect

    async def main():
        async with connect("localhost", 61613, login="guest", passcode="guest") as client:
            prices = await client.subscribe("/topic/price.stock.*")
            async for message in prices:
                print(message.destination, message.text())

    trio.run(main)
"""

from ._adapter import (
    Client,
    ConnectionLost,
    ReceivedMessage,
    ReconnectPolicy,
    ServerSession,
    StompError,
    Subscription,
    Transaction,
    connect,
    serve,
)

__all__ = (
    "Client",
    "ConnectionLost",
    "ReceivedMessage",
    "ReconnectPolicy",
    "ServerSession",
    "StompError",
    "Subscription",
    "Transaction",
    "connect",
    "serve",
)
