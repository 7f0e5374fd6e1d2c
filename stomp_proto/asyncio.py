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

from ._adapter import *  # noqa: F403 - the shared AnyIO adapter is the API
from ._adapter import __all__ as __all__  # noqa: PLC0414 - an explicit re-export
