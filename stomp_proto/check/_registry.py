"""How checks are declared, and the judgements many of them share.

Each section module declares its checks with :func:`check`, a decorator that
records a :class:`~._model.Check` (the data) around its coroutine (the
function). The judgements here are the catalogue's vocabulary for what a
server does with a frame it must refuse (:func:`refused`), with a CONNECT it
must refuse (:func:`handshake_refused`), and with what must not arrive
(:func:`nothing_more`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .. import Ack, Frame, Nack
from ._model import Check, CheckFunction, Fail, Level, Warn
from ._wire import CLOSED, SILENT, Context, Probe, describe

__all__ = [
    "ALL",
    "MAY",
    "MUST",
    "POLICY",
    "REGISTRY",
    "SHOULD",
    "V11",
    "V12",
    "ack_frame",
    "check",
    "handshake_refused",
    "nothing_more",
    "raw",
    "refused",
]

MUST, SHOULD, MAY, POLICY = Level.MUST, Level.SHOULD, Level.MAY, Level.POLICY
ALL = ("1.0", "1.1", "1.2")
V11 = ("1.1", "1.2")
V12 = ("1.2",)

#: Every check declared, in declaration order.
REGISTRY: list[Check] = []


def check(
    check_id: str,
    number: int,
    level: Level,
    title: str,
    *,
    versions: tuple[str, ...] = ALL,
    default: tuple[str, ...] = (),
    levels: dict[str, Level] | None = None,
    websocket: bool = False,
    slow: float = 4.0,
) -> Callable[[CheckFunction], CheckFunction]:
    """Declare the decorated coroutine as a check (see :class:`~._model.Check`)."""

    def register(run: CheckFunction) -> CheckFunction:
        REGISTRY.append(
            Check(
                id=check_id,
                number=number,
                level=level,
                title=title,
                versions=versions,
                default=default,
                levels=tuple(sorted((levels or {}).items())),
                websocket=websocket,
                slow=slow,
                run=run,
            )
        )
        return run

    return register


def raw(command: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> bytes:
    """The bytes of a frame exactly as given: no escaping, no checks, no content-length."""
    lines = [command, *(f"{name}:{value}" for name, value in headers)]
    return ("\n".join(lines) + "\n\n").encode() + body + b"\0"


def ack_frame(
    message: Frame,
    version: str,
    *,
    nack: bool = False,
    transaction: str | None = None,
    receipt: str | None = None,
) -> Frame:
    """The ACK (or NACK) of ``message`` in ``version``'s form, as the core writes it."""
    kind = Nack if nack else Ack
    event = kind(
        id=message.get("ack"),
        message_id=message.get("message-id"),
        subscription=message.get("subscription"),
        transaction=transaction,
        receipt=receipt,
    )
    return event.to_frame(version)


async def refused(probe: Probe, bad: bytes, what: str, receipt: str | None = None) -> Frame:
    """Write ``bad`` (a frame the server must refuse) and judge the answer.

    A SEND with a receipt follows it in the same write, so that a server that
    silently skips the bad frame is caught answering the next one. Returns
    the ERROR; raises :class:`Fail` when the server accepted the frame,
    skipped it, or neither answered nor closed the connection (a hang), and
    :class:`Warn` when it closed the connection without an ERROR.
    """
    ctx = probe.ctx
    ping = probe.receipt_id()
    follow = Frame("SEND", (("destination", ctx.topic()), ("receipt", ping)), b"next frame")
    await probe.write(bad + probe.encode(follow))
    reply = await probe.reply()
    if reply is SILENT:
        raise Fail(
            f"{what}: the server neither answered nor closed the connection "
            f"within {ctx.timeout:g} s"
        )
    if reply is CLOSED:
        raise Warn(f"{what} was refused by closing the connection, without an ERROR frame")
    if reply.command == "ERROR":
        return reply
    if receipt is not None and reply.get("receipt-id") == receipt:
        raise Fail(f"the server accepted {what}: {describe(reply)}")
    raise Fail(f"the server skipped {what} and answered the next frame: {describe(reply)}")


async def handshake_refused(
    probe: Probe, connect: bytes, what: str, *, must_close: bool = True
) -> Frame:
    """Write ``connect`` (a CONNECT the server must refuse) and judge the answer.

    Returns the ERROR once the connection is closed (or, with
    ``must_close=False``, at once). Raises :class:`Fail` for a CONNECTED or a
    hang, :class:`Warn` for a close without ERROR or an ERROR that leaves the
    connection open.
    """
    ctx = probe.ctx
    await probe.write(connect)
    try:
        reply = await probe.next()
    except Fail:
        raise Fail(
            f"{what}: the server neither answered nor closed the connection "
            f"within {ctx.timeout:g} s"
        ) from None
    if reply is None:
        raise Warn(f"{what} was refused by closing the connection, without an ERROR frame")
    if reply.command == "CONNECTED":
        raise Fail(f"the server accepted {what}: {describe(reply)}")
    if reply.command != "ERROR":
        raise Fail(f"the server answered {what} with {describe(reply)}")
    if must_close and not await probe.closes():
        raise Warn(
            f"{what} got an ERROR, but the connection stayed open for {ctx.timeout:g} s "
            f"(the server must close it after an ERROR)"
        )
    return reply


async def nothing_more(probe: Probe, what: str, *, command: str = "MESSAGE") -> None:
    """Watch ``probe`` for ``ctx.settle`` seconds: :class:`Fail` if a ``command`` frame came."""
    await probe.quiet(probe.ctx.settle)
    extra = probe.pending(command)
    if extra:
        raise Fail(f"{what}: {describe(extra[0])}")


def control(ctx: Context) -> bytes:
    """A body that marks a control message (sent to prove the path works)."""
    return f"control {ctx.run_id}".encode()
