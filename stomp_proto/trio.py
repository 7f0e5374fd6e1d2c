"""STOMP clients and servers on trio: the very objects of :mod:`stomp_proto.asyncio`.

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

The event loop that runs the code picks the backend, not the module it came
from; the classes keep the name of the module that defines them
(``stomp_proto.asyncio.Client``), in reprs and in type checkers alike.
"""

try:
    from .asyncio import *  # noqa: F403 - the shared AnyIO adapter is the API
    from .asyncio import __all__ as __all__  # noqa: PLC0414 - an explicit re-export
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    if exc.name != "anyio":
        raise
    raise ModuleNotFoundError(
        "stomp_proto.trio needs 'anyio': pip install 'stomp-proto[trio]'", name=exc.name
    ) from exc
