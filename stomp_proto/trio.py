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

from ._adapter import *  # noqa: F403 - the shared AnyIO adapter is the API
from ._adapter import __all__ as __all__  # noqa: PLC0414 - an explicit re-export
