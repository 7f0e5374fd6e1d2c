"""Sections B and C of the checklist: the connection lifecycle and heart-beating.

Version negotiation checks open one connection per ``accept-version`` list
and compare the CONNECTED ``version`` with what the server said it speaks in
the preflight. Heart-beat checks take their intervals from the core (the
:class:`~stomp_proto.ClientConnection` that did the handshake computes them
from both ``heart-beat`` headers) and watch the wire for a few intervals; an
interval too long to watch within the check's time is a SKIP, never a guess.
"""

from __future__ import annotations

import asyncio
import os
import re

from ._model import Fail, Skip, Warn
from ._registry import ALL, MAY, MUST, POLICY, SHOULD, V11, V12, check, handshake_refused, raw
from ._wire import Context, Probe, describe

__all__ = ["HEART_BEAT_LIMIT", "connect_bytes"]

#: The longest heart-beat interval (ms) the heart-beat checks watch at the
#: default --timeout; a longer --timeout raises it.
HEART_BEAT_LIMIT = 2000
#: What the checks ask for (ms): short enough to watch, long enough for a loaded machine.
ASKED = 1000
_SERVER = re.compile(r"[^/ ]+(/[^ ]+)?( .+)?")


def _credentials(ctx: Context) -> list[tuple[str, str]]:
    target = ctx.target
    out = []
    if target.login is not None:
        out.append(("login", target.login))
    if target.passcode is not None:
        out.append(("passcode", target.passcode))
    return out


def connect_bytes(
    ctx: Context,
    accept: str | None,
    *,
    command: str = "CONNECT",
    extra: list[tuple[str, str]] | None = None,
) -> bytes:
    """A CONNECT written by hand (for what the core refuses to write)."""
    headers = [] if accept is None else [("accept-version", accept)]
    headers.append(("host", ctx.target.vhost))
    headers += _credentials(ctx)
    headers += extra or []
    return raw(command, headers)


# -- B. Connection lifecycle ---------------------------------------------------------


@check(
    "connect/stomp-frame",
    36,
    MUST,
    "a STOMP frame is handled like CONNECT",
    versions=V11,
    levels={"1.1": SHOULD},
)
async def stomp_frame(ctx: Context) -> None:
    probe = ctx.probe()
    await probe.open()
    reply = await probe.connect(stomp=True)
    if reply.get("version") != ctx.version:
        raise Fail(f"STOMP accept-version:{ctx.version} got {describe(reply)}")


@check(
    "connect/no-accept-version",
    37,
    MUST,
    "a CONNECT without accept-version opens a 1.0 session",
    versions=(),
)
async def no_accept_version(ctx: Context) -> None:
    if "1.0" not in ctx.versions:
        raise Skip("the server does not accept STOMP 1.0")
    probe = ctx.probe()
    await probe.open()
    reply = await probe.connect(())
    if reply.get("version", "1.0") != "1.0":
        raise Fail(f"a CONNECT without accept-version got {describe(reply)}")


@check(
    "connect/highest-version",
    38,
    MUST,
    "the session gets the highest version both sides speak, whatever the list's order",
    versions=(),
)
async def highest_version(ctx: Context) -> None:
    wrong = []
    for offered in ("1.0,1.1,1.2", "1.2,1.1,1.0", "1.0,1.1", "1.1,2.0"):
        common = [v for v in offered.split(",") if v in ctx.versions]
        if not common:
            continue
        wanted = max(common, key=lambda v: tuple(map(int, v.split("."))))
        probe = ctx.probe()
        await probe.open()
        await probe.write(connect_bytes(ctx, offered))
        reply = await probe.next()
        if reply is None or reply.command != "CONNECTED":
            raise Fail(f"accept-version:{offered} got {reply and describe(reply)}")
        got = reply.get("version", "1.0")
        if got != wanted:
            wrong.append(f"accept-version:{offered} got version:{got}, not {wanted}")
    if wrong:
        raise Fail("; ".join(wrong))


@check(
    "connect/accept-version-spaces",
    38,
    POLICY,
    "spaces around accept-version entries are ignored ('1.0, 1.2')",
    versions=(),
)
async def accept_version_spaces(ctx: Context) -> None:
    if "1.2" not in ctx.versions:
        raise Skip("the server does not accept STOMP 1.2")
    probe = ctx.probe()
    await probe.open()
    await probe.write(connect_bytes(ctx, "1.0, 1.2"))
    reply = await probe.next()
    if reply is None or reply.command != "CONNECTED":
        raise Fail(f"accept-version:1.0, 1.2 got {reply and describe(reply)}")
    if reply.get("version") != "1.2":
        raise Fail(f"accept-version:1.0, 1.2 got version:{reply.get('version')}, not 1.2")


@check(
    "connect/no-common-version",
    39,
    MUST,
    "with no common version: ERROR (with a version header), then close",
    versions=(),
)
async def no_common_version(ctx: Context) -> None:
    probe = ctx.probe()
    await probe.open()
    error = await handshake_refused(
        probe, connect_bytes(ctx, "2.0,3.1"), "accept-version:2.0,3.1", must_close=False
    )
    if not await probe.closes():
        raise Fail(
            f"the server sent an ERROR for accept-version:2.0,3.1 but kept the connection "
            f"open for {ctx.timeout:g} s"
        )
    if error.get("version") is None:
        raise Warn("the ERROR for accept-version:2.0,3.1 has no version header")


@check(
    "connect/connected-version",
    40,
    MUST,
    "CONNECTED carries the negotiated version",
    default=ALL,
    levels={"1.0": POLICY},
)
async def connected_version(ctx: Context) -> None:
    probe = ctx.probe()
    await probe.open()
    reply = await probe.connect()
    if reply.get("version") != ctx.version:
        raise Fail(f"CONNECT accept-version:{ctx.version} got {describe(reply)}")


@check(
    "connect/server-header",
    41,
    MAY,
    "a CONNECTED server header reads name[/version] [comments]",
    versions=V11,
)
async def server_header(ctx: Context) -> None:
    probe = await ctx.connected()
    assert probe.connected is not None
    server = probe.connected.get("server")
    if server is None:
        return
    if not _SERVER.fullmatch(server):
        raise Fail(f"server:{server!r} is not name[/version] followed by comments")


@check(
    "connect/crlf-connect",
    3,
    MUST,
    "a CONNECT with CR LF line ends is accepted",
    versions=V12,
)
async def crlf_connect(ctx: Context) -> None:
    probe = ctx.probe()
    await probe.open()
    await probe.write(connect_bytes(ctx, "1.2").replace(b"\n", b"\r\n"))
    reply = await probe.next()
    if reply is None or reply.command != "CONNECTED":
        raise Fail(f"a CR LF CONNECT got {reply and describe(reply)}")


@check(
    "connect/missing-host",
    43,
    POLICY,
    "a 1.1+ CONNECT without host is accepted (stompjs sends none)",
    versions=V11,
)
async def missing_host(ctx: Context) -> None:
    probe = ctx.probe()
    await probe.open()
    await probe.connect(host=None)


@check(
    "connect/bad-credentials",
    44,
    MAY,
    "a login the server refuses gets an ERROR, then a close",
    versions=(),
)
async def bad_credentials(ctx: Context) -> None:
    probe = ctx.probe()
    await probe.open()
    headers = [
        ("accept-version", ctx.session_version),
        ("host", ctx.target.vhost),
        ("login", f"stomp-check-{ctx.run_id}"),
        ("passcode", os.urandom(8).hex()),
    ]
    await probe.write(raw("CONNECT", headers))
    reply = await probe.next()
    if reply is not None and reply.command == "CONNECTED":
        raise Skip("the server accepted a made-up login: it does not check credentials")
    if reply is None:
        raise Warn("the server refused a made-up login by closing, without an ERROR frame")
    if reply.command != "ERROR":
        raise Fail(f"a made-up login got {describe(reply)}")
    if not await probe.closes():
        raise Warn(
            f"the server refused a made-up login with an ERROR but kept the connection open "
            f"for {ctx.timeout:g} s"
        )


@check(
    "connect/frame-before-connect",
    45,
    POLICY,
    "a frame before CONNECT gets an ERROR, then a close",
    versions=(),
)
async def frame_before_connect(ctx: Context) -> None:
    probe = ctx.probe()
    await probe.open()
    frame = raw("SEND", [("destination", ctx.topic()), ("receipt", "r-1")], b"too early")
    await handshake_refused(probe, frame, "a SEND before CONNECT")


@check(
    "connect/second-connect",
    46,
    POLICY,
    "a second CONNECT in a session gets an ERROR, then a close",
)
async def second_connect(ctx: Context) -> None:
    probe = await ctx.connected()
    await handshake_refused(probe, connect_bytes(ctx, ctx.version), "a second CONNECT")


@check(
    "connect/silent-before-connect",
    47,
    POLICY,
    "the server sends nothing before the client's CONNECT",
    versions=(),
)
async def silent_before_connect(ctx: Context) -> None:
    probe = ctx.probe()
    await probe.open()
    await probe.quiet(2 * ctx.settle)
    if probe.last_data is not None:
        raise Fail("the server sent bytes before the client's CONNECT")


@check(
    "connect/receipt-on-connect",
    83,
    POLICY,
    "a receipt header on CONNECT produces no RECEIPT frame",
    versions=V11,
)
async def receipt_on_connect(ctx: Context) -> None:
    probe = ctx.probe()
    await probe.open()
    await probe.write(connect_bytes(ctx, ctx.version, extra=[("receipt", "connect-receipt")]))
    reply = await probe.next()
    if reply is None or reply.command != "CONNECTED":
        raise Fail(f"a CONNECT with a receipt header got {reply and describe(reply)}")
    await probe.quiet(probe.ctx.settle)
    if probe.pending("RECEIPT"):
        raise Warn(f"the server sent {describe(probe.pending('RECEIPT')[0])} for the CONNECT")


# -- C. Heart-beating ----------------------------------------------------------------


def _limit(ctx: Context) -> int:
    return max(HEART_BEAT_LIMIT, int(ctx.timeout * 1000))


def _watchable(ctx: Context, interval: int, who: str) -> float:
    """The interval in seconds, or Skip if it is too long to watch."""
    if interval > _limit(ctx):
        raise Skip(
            f"the negotiated {who} heart-beat interval is {interval} ms, longer than "
            f"{_limit(ctx)} ms (a --timeout of {interval / 1000:g} s or more checks it)"
        )
    return interval / 1000


@check(
    "heart-beat/connected-header",
    49,
    MUST,
    "CONNECTED heart-beat is two comma-separated non-negative integers (or absent)",
    versions=V11,
)
async def connected_header(ctx: Context) -> None:
    # The core (the ClientConnection behind Probe.connect) refuses any other form.
    probe = await ctx.connected(heart_beat=(ASKED, ASKED))
    assert probe.connected is not None
    value = probe.connected.get("heart-beat")
    if value is not None and not re.fullmatch(r"\d+,\d+", value):
        raise Fail(f"heart-beat:{value!r} is not two non-negative integers")


@check(
    "heart-beat/malformed",
    50,
    POLICY,
    "a malformed CONNECT heart-beat (1,2,3) gets an ERROR, then a close",
    versions=V11,
)
async def malformed(ctx: Context) -> None:
    probe = ctx.probe()
    await probe.open()
    connect = connect_bytes(ctx, ctx.version, extra=[("heart-beat", "1,2,3")])
    await handshake_refused(probe, connect, "heart-beat:1,2,3")


@check(
    "heart-beat/server-beats",
    53,
    MUST,
    "the server sends something at least every negotiated interval",
    versions=V11,
    slow=8.0,
)
async def server_beats(ctx: Context) -> None:
    probe = await ctx.connected(heart_beat=(0, ASKED))
    interval = probe.intervals[1]
    if interval == 0:
        raise Skip(
            f"the server offers no heart-beats (CONNECT heart-beat:0,{ASKED} got "
            f"{probe.connected and probe.connected.get('heart-beat')})"
        )
    seconds = _watchable(ctx, interval, "server-to-client")
    allowed = 2 * seconds + 0.5  # the interval, and as much again for the timer's slack
    loop = asyncio.get_running_loop()
    end = loop.time() + 3 * seconds
    while loop.time() < end:
        if not await probe.activity(allowed):
            raise Fail(
                f"nothing from the server for {allowed:g} s with a negotiated heart-beat "
                f"of {interval} ms"
            )
        if probe.eof:
            raise Fail("the server closed the connection")
    if not probe.heartbeats:
        raise Fail(f"no heart-beat EOL in {3 * seconds:g} s (interval {interval} ms)")


@check(
    "heart-beat/client-beats-keep-alive",
    55,
    MUST,
    "a client that heart-beats (LF) on time is kept",
    versions=V11,
    slow=8.0,
)
async def client_beats(ctx: Context) -> None:
    probe = await ctx.connected(heart_beat=(ASKED, 0))
    interval = probe.intervals[0]
    if interval == 0:
        raise Skip(
            f"the server wants no heart-beats (CONNECT heart-beat:{ASKED},0 got "
            f"{probe.connected and probe.connected.get('heart-beat')})"
        )
    seconds = _watchable(ctx, interval, "client-to-server")
    for _ in range(6):
        await probe.quiet(seconds / 2)
        if probe.eof:
            raise Fail(f"the server closed a connection that heart-beat every {seconds / 2:g} s")
        await probe.write(b"\n")
    rid = probe.receipt_id()
    await probe.write(raw("SEND", [("destination", ctx.topic()), ("receipt", rid)], b"alive"))
    await probe.receipt(rid)


@check(
    "heart-beat/crlf-heart-beats",
    54,
    MUST,
    "CR LF heart-beats (the 1.2 EOL) are read as heart-beats, one after another",
    versions=V12,
)
async def crlf_beats(ctx: Context) -> None:
    probe = await ctx.connected()
    for _ in range(3):
        await probe.write(b"\r\n")
        await probe.quiet(ctx.settle / 4)
        if probe.eof:
            raise Fail("the server closed the connection after CR LF heart-beats")
    rid = probe.receipt_id()
    await probe.write(raw("SEND", [("destination", ctx.topic()), ("receipt", rid)], b"alive"))
    await probe.receipt(rid)


@check(
    "heart-beat/silent-client-dropped",
    56,
    SHOULD,
    "a client silent past the negotiated interval is dropped, and not before it",
    versions=V11,
    slow=8.0,
)
async def silent_client(ctx: Context) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    probe = await ctx.connected(heart_beat=(ASKED, 0))
    interval = probe.intervals[0]
    if interval == 0:
        raise Skip("the server wants no heart-beats, so it drops no silent client")
    seconds = _watchable(ctx, interval, "client-to-server")
    closed = await probe.closes(4 * seconds + 0.5)
    took = loop.time() - start
    if not closed:
        raise Fail(f"a client silent for {took:.1f} s (interval {interval} ms) was not dropped")
    if took < seconds:
        raise Fail(f"the server dropped the client after {took:.2f} s, before the {interval} ms")


@check(
    "heart-beat/none-in-1.0",
    58,
    POLICY,
    "a 1.0 session has no heart-beats, whatever CONNECT asks",
    versions=("1.0",),
    slow=8.0,
)
async def none_in_10(ctx: Context) -> None:
    probe: Probe = await ctx.connected(heart_beat=(ASKED, ASKED))
    await probe.quiet(2.5 * ASKED / 1000)
    if probe.eof:
        raise Fail("the server dropped a silent 1.0 client (heart-beating 1.0 sessions)")
    if probe.heartbeats:
        raise Fail(f"the server sent {len(probe.heartbeats)} heart-beat EOLs in a 1.0 session")
