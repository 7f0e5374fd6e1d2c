"""STOMP clients and servers on asyncio.

``pip install 'stomp-proto[asyncio]'``. The adapter is written once against
AnyIO, so this module and :mod:`stomp_proto.trio` offer the same API::

    import asyncio
    from stomp_proto.asyncio import connect

    async def main():
        async with connect("localhost", 61613, login="guest", passcode="guest") as client:
            prices = await client.subscribe("/topic/price.stock.*")
            async for message in prices:
                print(message.destination, message.text())

    asyncio.run(main())
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
