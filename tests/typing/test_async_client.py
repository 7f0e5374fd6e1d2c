"""Typing regression tests for the asyncio/trio client (checked by ``mypy --strict``).

Two halves. :func:`test_the_client_as_typed` runs a real session against our
broker on both backends, with ``assert_type`` on what a user sees, so that the
asserted values exist at run time. :func:`_mistakes_mypy_refuses` is never
run: each of its lines is a mistake users make (``pascode=``, ``hearbeat=``,
``ack="client_individual"``, a header that is not a str...), silenced with the
exact error code mypy must report. ``--strict`` includes
``--warn-unused-ignores``, so a mistake that stops being an error (an option
typed ``Any`` again, a ``Literal`` widened to ``str``) fails the check: these
ignores are the proof. :func:`test_mypy_strict_on_the_client` runs mypy on this
file, and on a user's file whose ``reveal_type`` must show public names.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

if sys.version_info >= (3, 11):
    from typing import assert_type
elif TYPE_CHECKING:
    from typing_extensions import assert_type
else:  # Python 3.10 at run time: only mypy needs the real one

    def assert_type(value: Any, typ: Any, /) -> Any:
        return value


import stomp_proto.trio
from stomp_proto import Receipt
from stomp_proto.asyncio import (
    AckMode,
    Client,
    ClientState,
    ConnectionLost,
    ReceivedMessage,
    ReconnectPolicy,
    StateChange,
    StompError,
    Subscription,
    Transaction,
    connect,
)
from stomp_proto.broker import Broker

HERE = Path(__file__).resolve()


async def _session() -> None:
    async with Broker(tcp=[("127.0.0.1", 0)], ws=[], heart_beat=(0, 0)) as broker:
        port = broker.addresses[0][2]
        changes: list[StateChange] = []
        client = connect(
            "127.0.0.1",
            port,
            login="guest",
            passcode="guest",
            vhost="/",
            versions=("1.1", "1.2"),
            heart_beat=(0, 0),
            headers={"client-id": "typing"},
            reconnect=ReconnectPolicy(max_attempts=1),
            receipt_timeout=5.0,
            buffer=10,
            on_state=changes.append,
        )
        assert_type(client, Client)
        async with client as c:
            assert_type(c, Client)
            assert_type(c.is_connected, bool)
            assert_type(c.version, str | None)
            assert_type(await c.wait_connected(timeout=1.0), bool)
            sub = await c.subscribe("/queue/typing", ack="client-individual", headers=[("x", "y")])
            assert_type(sub, Subscription)
            assert_type(sub.ack_mode, AckMode)
            assert_type(sub.id, str)
            receipt = await c.send("/queue/typing", "hi", headers={"priority": "9"}, receipt=True)
            assert_type(receipt, Receipt | None)
            assert isinstance(receipt, Receipt)
            message = await sub.get()
            assert_type(message, ReceivedMessage)
            assert_type(message.header("priority"), str | None)
            assert message.header("priority") == "9"
            assert_type(message.headers, tuple[tuple[str, str], ...])
            assert_type(message.text(), str)
            await message.ack(receipt=True)
            async with c.transaction() as tx:
                assert_type(tx, Transaction)
                assert_type(await tx.send("/queue/typing", b"in tx"), Receipt | None)
            async for each in sub:
                assert_type(each, ReceivedMessage)
                await each.ack(transaction=None)
                break
            await c.send("/queue/typing", b"waits", wait_connected=True)
            await sub.unsubscribe()
        change = changes[0]
        assert_type(change, StateChange)
        assert_type(change.state, ClientState)
        assert_type(change.error, BaseException | None)
        assert [c.state for c in changes] == ["connected", "closed"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_client_as_typed(backend: str) -> None:
    anyio.run(_session, backend=backend)
    assert stomp_proto.trio.Client is Client and stomp_proto.trio.connect is connect
    assert issubclass(ConnectionLost, ConnectionError) and issubclass(StompError, Exception)
    for public in (Client, Subscription, ReceivedMessage, Transaction, StateChange):
        assert public.__module__ == "stomp_proto.asyncio", public


async def _mistakes_mypy_refuses(client: Client, message: ReceivedMessage) -> None:
    """Never run. Each line must be the mypy error its ignore names (see the module docstring)."""
    connect("localhost", 61613, pascode="x")  # type: ignore[call-arg]
    connect("localhost", 61613, hearbeat=(1, 1))  # type: ignore[call-arg]
    connect("localhost", 61613, reconnect=True)  # type: ignore[arg-type]
    connect("localhost", 61613, headers={"client-id": 7})  # type: ignore[arg-type]
    await client.subscribe("/queue/a", ack="client_individual")  # type: ignore[arg-type]
    await client.subscribe("/queue/a", prefetch=10)  # type: ignore[call-arg]
    await client.send("/queue/a", "x", headers={"priority": 9})  # type: ignore[arg-type]
    await client.send("/queue/a", "x", headers=[("priority", 9)])  # type: ignore[list-item]
    await client.send("/queue/a", 42)  # type: ignore[arg-type]
    await client.send("/queue/a", "x", wait=True)  # type: ignore[call-arg]
    await message.ack(transaction=3)  # type: ignore[arg-type]
    mode: AckMode = "client_individual"  # type: ignore[assignment]
    state: ClientState = "disconnected"  # type: ignore[assignment]
    del mode, state


#: A user's file: reveal_type must show the names users import, not private modules,
#: and the mistakes docs/asyncio.rst shows get the messages it shows.
USER_CODE = """\
from stomp_proto.asyncio import Client, StateChange, connect
import stomp_proto.trio

async def main(client: Client) -> None:
    sub = await client.subscribe("/queue/a")
    reveal_type(sub)
    reveal_type(await sub.get())
    reveal_type(stomp_proto.trio.connect("localhost"))
    async with client.transaction() as tx:
        reveal_type(tx)
    connect("localhost", 61613, pascode="x")
    await client.subscribe("/queue/a", ack="client_individual")
    await client.send("/queue/a", "x", headers={"priority": 9})

def on_state(change: StateChange) -> None:
    reveal_type(change)
"""

#: What mypy says of USER_CODE's mistakes (line: message), as docs/asyncio.rst quotes it.
MYPY_SAYS = [
    '11: error: Unexpected keyword argument "pascode" for "connect"; did you mean "passcode"?'
    "  [call-arg]",
    '12: error: Argument "ack" to "subscribe" of "Client" has incompatible type'
    " \"Literal['client_individual']\"; expected"
    " \"Literal['auto', 'client', 'client-individual']\"  [arg-type]",
    '13: error: Argument "headers" to "send" of "Client" has incompatible type "dict[str, int]";'
    ' expected "Mapping[str, str] | Iterable[tuple[str, str]] | None"  [arg-type]',
]


def test_mypy_strict_on_the_client(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    user = tmp_path / "user_code.py"
    user.write_text(textwrap.dedent(USER_CODE))
    out, err, _ = api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(HERE),
            str(user),
        ]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    # This file is clean (every ignore above was needed); the user's mistakes are reported.
    assert [re.sub(r"^.*user_code\.py:", "", e) for e in errors] == MYPY_SAYS, out + err
    revealed = re.findall(r'user_code\.py:(\d+): note: Revealed type is "([^"]+)"', out)
    assert revealed == [
        ("6", "stomp_proto.asyncio.Subscription"),
        ("7", "stomp_proto.asyncio.ReceivedMessage"),
        ("8", "stomp_proto.asyncio.Client"),
        ("10", "stomp_proto.asyncio.Transaction"),
        ("16", "stomp_proto.asyncio.StateChange"),
    ], out
