"""Section A of the checklist: framing and parsing.

Most checks send one SEND the server must read in a particular way (CR LF
line ends, escapes, repeated headers, a body with NULs...) to a topic the
same connection subscribed to, and judge the MESSAGE that comes back, parsed
by the core for the session's version. The others send a frame the server
must refuse and judge how it refuses (see :func:`~._registry.refused`).
"""

from __future__ import annotations

from collections.abc import Callable

from .. import Frame
from ._model import Fail
from ._registry import ALL, MUST, POLICY, SHOULD, V11, V12, check, raw, refused
from ._wire import Context, describe

__all__ = ["delivered", "expect_body", "expect_header"]

#: Written one byte at a time by framing/byte-at-a-time.
_TRICKLE_BODY = b"body with \x00 NUL"


async def delivered(
    ctx: Context,
    build: Callable[[str, str], bytes],
    *,
    cuts: Callable[[bytes], list[int]] | None = None,
) -> Frame:
    """Subscribe, write ``build(destination, receipt)``, return the MESSAGE it produced."""
    probe = await ctx.connected()
    destination = ctx.topic()
    await probe.subscribe(destination)
    rid = probe.receipt_id()
    data = build(destination, rid)
    if cuts is None:
        await probe.write(data)
    else:
        await probe.write_pieces(data, cuts(data))
    await probe.receipt(rid)
    return await probe.message("s-1")


def expect_header(frame: Frame, name: str, wanted: str) -> None:
    """:class:`Fail` unless the first ``name`` header of ``frame`` is ``wanted``."""
    got = frame.get(name)
    if got is None:
        raise Fail(f"the {frame.command} has no {name!r} header (expected {wanted!r})")
    if got != wanted:
        raise Fail(f"the {frame.command} header {name!r} is {got!r}, not {wanted!r}")


def expect_body(frame: Frame, wanted: bytes) -> None:
    if frame.body != wanted:
        shown = frame.body[:60]
        more = f" ({len(frame.body)} bytes)" if len(frame.body) > 60 else ""
        raise Fail(f"the {frame.command} body is {shown!r}{more}, not {wanted[:60]!r}")


@check(
    "framing/frame-layout",
    1,
    MUST,
    "a SEND (command, headers, blank line, body, NUL) reaches a subscriber intact",
    default=ALL,
)
async def frame_layout(ctx: Context) -> None:
    message = await delivered(
        ctx,
        lambda dest, rid: Frame(
            "SEND",
            (("destination", dest), ("content-type", "text/plain"), ("receipt", rid)),
            b"hello, STOMP",
        ).serialize(ctx.version),
    )
    expect_body(message, b"hello, STOMP")


@check(
    "framing/body-without-content-length",
    27,
    MUST,
    "without content-length the body ends at the first NUL",
)
async def body_to_nul(ctx: Context) -> None:
    message = await delivered(
        ctx, lambda dest, rid: raw("SEND", [("destination", dest), ("receipt", rid)], b"up to NUL")
    )
    expect_body(message, b"up to NUL")


@check("framing/command-case", 2, MUST, "commands are case-sensitive: 'send' is not SEND")
async def command_case(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw("send", [("destination", ctx.topic()), ("receipt", rid)], b"lower case")
    await refused(probe, bad, "a 'send' command", rid)


@check(
    "framing/header-case",
    2,
    MUST,
    "header names are case-sensitive: 'Destination' is not 'destination'",
)
async def header_case(ctx: Context) -> None:
    probe = await ctx.connected()
    right, wrong = ctx.topic(), ctx.topic()
    await probe.subscribe(right, "s-1")
    await probe.subscribe(wrong, "s-2")
    rid = probe.receipt_id()
    await probe.write(
        raw(
            "SEND",
            [("Destination", wrong), ("destination", right), ("receipt", rid)],
            b"case",
        )
    )
    await probe.receipt(rid)
    message = await probe.message()
    if message.get("subscription") == "s-2":
        raise Fail(f"the message went to the 'Destination' header's {wrong}: {describe(message)}")


@check(
    "framing/crlf",
    3,
    MUST,
    "CR LF ends the command line, every header line and the blank line",
    versions=V12,
)
async def crlf(ctx: Context) -> None:
    await _crlf(ctx)


@check(
    "framing/crlf-before-1.2",
    4,
    POLICY,
    "CR LF line ends are read as LF in 1.0 and 1.1 sessions too (every surveyed broker does)",
    versions=("1.0", "1.1"),
    default=("1.0", "1.1"),
)
async def crlf_old(ctx: Context) -> None:
    await _crlf(ctx)


async def _crlf(ctx: Context) -> None:
    def build(dest: str, rid: str) -> bytes:
        lines = ["SEND", f"destination:{dest}", "x-check:crlf", f"receipt:{rid}", "", ""]
        return "\r\n".join(lines).encode() + b"crlf body\0"

    message = await delivered(ctx, build)
    expect_header(message, "x-check", "crlf")
    expect_body(message, b"crlf body")


@check(
    "framing/lone-cr",
    5,
    MUST,
    "a CR not followed by LF in the headers is a protocol error",
    versions=V12,
)
async def lone_cr(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = f"SEND\r\ndestination:{ctx.topic()}\rx\r\nreceipt:{rid}\r\n\r\nlone CR\0".encode()
    await refused(probe, bad, "a header with a CR not followed by LF", rid)


@check(
    "framing/eols-between-frames",
    6,
    MUST,
    "EOLs (LF) between frames are skipped",
)
async def eols_between(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    r1, r2 = probe.receipt_id(), probe.receipt_id()
    await probe.write(
        b"\n\n\n"
        + probe.encode(
            Frame("SUBSCRIBE", (("destination", destination), ("id", "s-1"), ("receipt", r1)))
        )
        + b"\n\n"
        + probe.encode(
            Frame("SEND", (("destination", destination), ("receipt", r2)), b"after EOLs")
        )
        + b"\n"
    )
    await probe.receipt(r1)
    await probe.receipt(r2)
    expect_body(await probe.message("s-1"), b"after EOLs")


@check(
    "framing/eols-before-connect",
    8,
    POLICY,
    "EOLs before the CONNECT frame are skipped",
    versions=(),
)
async def eols_before_connect(ctx: Context) -> None:
    probe = ctx.probe()
    await probe.open()
    await probe.write(b"\n\n")
    await probe.connect()


@check(
    "framing/stray-nul",
    8,
    POLICY,
    "stray NUL octets between frames are skipped",
)
async def stray_nul(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    await probe.write(
        b"\0\0" + probe.encode(Frame("SEND", (("destination", ctx.topic()), ("receipt", rid))))
    )
    await probe.receipt(rid)


@check(
    "framing/byte-at-a-time",
    9,
    MUST,
    "CONNECT and a SEND written one byte at a time (mid-EOL, mid-escape, mid-UTF-8, mid-body)",
)
async def byte_at_a_time(ctx: Context) -> None:
    probe = ctx.probe()
    await probe.open()
    version = ctx.version
    target = ctx.target
    connect = [("accept-version", version), ("host", target.vhost)]
    if target.login is not None:
        connect.append(("login", target.login))
    if target.passcode is not None:
        connect.append(("passcode", target.passcode))
    data = Frame("CONNECT", tuple(connect)).serialize(version)
    await probe.write_pieces(data, list(range(1, len(data))))
    reply = await probe.next()
    if reply is None or reply.command != "CONNECTED":
        raise Fail(f"a CONNECT written byte by byte got {reply and describe(reply)}")
    destination = ctx.topic()
    await probe.subscribe(destination)
    rid = probe.receipt_id()
    headers = [("destination", destination), ("x-utf8", "é€😀"), ("receipt", rid)]
    if version != "1.0":
        headers.append(("x-escape", "a:b"))
    data = Frame("SEND", tuple(headers), _TRICKLE_BODY).serialize(version)
    if version == "1.2":  # CR LF line ends, so that a write falls between CR and LF
        head, _, body = data.partition(b"\n\n")
        data = head.replace(b"\n", b"\r\n") + b"\r\n\r\n" + body
    await probe.write_pieces(data, list(range(1, len(data))))
    await probe.receipt(rid)
    message = await probe.message("s-1")
    expect_body(message, _TRICKLE_BODY)
    expect_header(message, "x-utf8", "é€😀")
    if version != "1.0":
        expect_header(message, "x-escape", "a:b")


@check(
    "framing/pipelined",
    10,
    MUST,
    "several frames in one write are all processed",
)
async def pipelined(ctx: Context) -> None:
    probe = await ctx.connected()
    destination = ctx.topic()
    receipts = [probe.receipt_id() for _ in range(4)]
    frames = [
        Frame("SUBSCRIBE", (("destination", destination), ("id", "s-1"), ("receipt", receipts[0])))
    ]
    frames += [
        Frame("SEND", (("destination", destination), ("receipt", rid)), f"m{n}".encode())
        for n, rid in enumerate(receipts[1:], 1)
    ]
    await probe.send(*frames)
    for rid in receipts:
        await probe.receipt(rid)
    bodies = sorted(m.body for m in await probe.messages(3, "s-1"))
    if bodies != [b"m1", b"m2", b"m3"]:
        raise Fail(f"the three SENDs gave the MESSAGE bodies {bodies}")


@check(
    "framing/colon-in-value",
    11,
    MUST,
    "a header line is split at its first colon; the value keeps the others",
)
async def colon_in_value(ctx: Context) -> None:
    message = await delivered(
        ctx,
        lambda dest, rid: raw(
            "SEND", [("destination", dest), ("x-colons", "a:b:c"), ("receipt", rid)], b"colons"
        ),
    )
    expect_header(message, "x-colons", "a:b:c")


@check(
    "framing/empty-value",
    12,
    MUST,
    "an empty header value is legal and kept",
    versions=V11,
)
async def empty_value(ctx: Context) -> None:
    message = await delivered(
        ctx,
        lambda dest, rid: raw(
            "SEND", [("destination", dest), ("x-empty", ""), ("receipt", rid)], b"empty"
        ),
    )
    expect_header(message, "x-empty", "")


@check(
    "framing/header-without-colon",
    13,
    POLICY,
    "a header line without a colon is a protocol error",
)
async def header_without_colon(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = f"SEND\ndestination:{ctx.topic()}\nno-colon-here\nreceipt:{rid}\n\nx\0".encode()
    await refused(probe, bad, "a header line without a colon", rid)


@check(
    "framing/empty-header-name",
    13,
    POLICY,
    "a header line with an empty name is a protocol error",
)
async def empty_header_name(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw("SEND", [("destination", ctx.topic()), ("", "no name"), ("receipt", rid)], b"x")
    await refused(probe, bad, "a header line with an empty name", rid)


@check(
    "framing/values-not-trimmed",
    14,
    MUST,
    "header values are never trimmed or padded",
    versions=V11,
)
async def values_not_trimmed(ctx: Context) -> None:
    message = await delivered(
        ctx,
        lambda dest, rid: raw(
            "SEND", [("destination", dest), ("x-spaces", "  padded  "), ("receipt", rid)], b"pad"
        ),
    )
    expect_header(message, "x-spaces", "  padded  ")


@check(
    "framing/repeated-headers",
    16,
    SHOULD,
    "of repeated headers the first one counts (the destination too)",
    versions=V12,
)
async def repeated_headers(ctx: Context) -> None:
    probe = await ctx.connected()
    first, second = ctx.topic(), ctx.topic()
    await probe.subscribe(first, "s-1")
    await probe.subscribe(second, "s-2")
    rid = probe.receipt_id()
    await probe.write(
        raw(
            "SEND",
            [
                ("destination", first),
                ("destination", second),
                ("x-repeated", "first"),
                ("x-repeated", "second"),
                ("receipt", rid),
            ],
            b"repeated",
        )
    )
    await probe.receipt(rid)
    message = await probe.message()
    if message.get("subscription") == "s-2":
        raise Fail(f"the message went to the second destination header: {describe(message)}")
    expect_header(message, "x-repeated", "first")


@check(
    "framing/utf-8",
    17,
    MUST,
    "UTF-8 header names and values arrive unchanged",
    versions=V11,
)
async def utf8(ctx: Context) -> None:
    message = await delivered(
        ctx,
        lambda dest, rid: raw(
            "SEND", [("destination", dest), ("x-ünï", "é€😀"), ("receipt", rid)], b"utf-8"
        ),
    )
    expect_header(message, "x-ünï", "é€😀")


@check(
    "framing/invalid-utf-8",
    17,
    POLICY,
    "a header that is not valid UTF-8 is a protocol error",
    versions=V11,
)
async def invalid_utf8(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw("SEND", [("destination", ctx.topic()), ("receipt", rid)], b"x")
    bad = bad.replace(b"\n\n", b"\nx-bad:\xff\xfe\n\n", 1)
    await refused(probe, bad, "a header value that is not UTF-8", rid)


@check(
    "framing/escapes",
    18,
    MUST,
    "\\r \\n \\c \\\\ in header names and values are decoded (and re-encoded on MESSAGE)",
    versions=V12,
)
async def escapes_12(ctx: Context) -> None:
    message = await delivered(
        ctx,
        lambda dest, rid: raw(
            "SEND",
            [("destination", dest), ("x-esc\\cname", "a\\cb\\nc\\\\d\\re"), ("receipt", rid)],
            b"escapes",
        ),
    )
    expect_header(message, "x-esc:name", "a:b\nc\\d\re")


@check(
    "framing/escapes-1.1",
    19,
    MUST,
    "\\n \\c \\\\ in header names and values are decoded (and re-encoded on MESSAGE)",
    versions=("1.1",),
)
async def escapes_11(ctx: Context) -> None:
    message = await delivered(
        ctx,
        lambda dest, rid: raw(
            "SEND",
            [("destination", dest), ("x-esc\\cname", "a\\cb\\nc\\\\d"), ("receipt", rid)],
            b"escapes",
        ),
    )
    expect_header(message, "x-esc:name", "a:b\nc\\d")


@check(
    "framing/escape-r-in-1.1",
    19,
    MUST,
    "\\r is an undefined escape in 1.1: a fatal protocol error",
    versions=("1.1",),
)
async def escape_r_11(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw("SEND", [("destination", ctx.topic()), ("x-esc", "a\\rb"), ("receipt", rid)], b"x")
    await refused(probe, bad, "the escape \\r in a 1.1 session", rid)


@check(
    "framing/undefined-escape",
    20,
    MUST,
    "an undefined escape (\\t) is a fatal protocol error",
    versions=V11,
)
async def undefined_escape(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw("SEND", [("destination", ctx.topic()), ("x-esc", "a\\tb"), ("receipt", rid)], b"x")
    await refused(probe, bad, "the undefined escape \\t", rid)


@check(
    "framing/trailing-backslash",
    20,
    MUST,
    "a backslash that ends a header value is a fatal protocol error",
    versions=V11,
)
async def trailing_backslash(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw("SEND", [("destination", ctx.topic()), ("x-esc", "ab\\"), ("receipt", rid)], b"x")
    await refused(probe, bad, "a header value ending in a backslash", rid)


@check(
    "framing/connect-not-unescaped",
    21,
    MUST,
    "CONNECT headers are not unescaped (\\t in a CONNECT value is not an error)",
    versions=V11,
)
async def connect_not_unescaped(ctx: Context) -> None:
    probe = ctx.probe()
    await probe.open()
    await probe.connect(headers=[("x-check", "C:\\temp\\new")])


@check(
    "framing/no-escapes-in-1.0",
    25,
    POLICY,
    "1.0 defines no escapes: a backslash in a 1.0 header is a plain character",
    versions=("1.0",),
)
async def no_escapes_10(ctx: Context) -> None:
    message = await delivered(
        ctx,
        lambda dest, rid: raw(
            "SEND", [("destination", dest), ("x-path", "C:\\new\\c"), ("receipt", rid)], b"1.0"
        ),
    )
    expect_header(message, "x-path", "C:\\new\\c")


@check(
    "framing/content-length-with-nul",
    26,
    MUST,
    "with content-length the body is that many octets, NULs included",
)
async def content_length_nul(ctx: Context) -> None:
    body = b"a\x00b\x00\x00c"
    message = await delivered(
        ctx,
        lambda dest, rid: raw(
            "SEND",
            [("destination", dest), ("content-length", str(len(body))), ("receipt", rid)],
            body,
        ),
    )
    expect_body(message, body)


@check(
    "framing/content-length-without-nul",
    26,
    MUST,
    "the octet after a content-length body must be NUL, else a protocol error",
)
async def content_length_no_nul(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw(
        "SEND", [("destination", ctx.topic()), ("content-length", "2"), ("receipt", rid)], b"abc"
    )
    await refused(probe, bad, "a body longer than its content-length", rid)


@check(
    "framing/bad-content-length",
    29,
    POLICY,
    "a content-length that is not a decimal integer is a protocol error",
)
async def bad_content_length(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw(
        "SEND", [("destination", ctx.topic()), ("content-length", "abc"), ("receipt", rid)], b"x"
    )
    await refused(probe, bad, "content-length:abc", rid)


@check(
    "framing/body-on-subscribe",
    32,
    POLICY,
    "a body on a frame other than SEND is refused",
    versions=V11,
)
async def body_on_subscribe(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    bad = raw("SUBSCRIBE", [("destination", ctx.topic()), ("id", "s-1"), ("receipt", rid)], b"body")
    await refused(probe, bad, "a SUBSCRIBE with a body", rid)


@check(
    "framing/content-length-on-any-frame",
    33,
    MUST,
    "any frame may carry content-length (content-length:0 on SUBSCRIBE)",
    versions=V12,
)
async def content_length_anywhere(ctx: Context) -> None:
    probe = await ctx.connected()
    rid = probe.receipt_id()
    await probe.write(
        raw(
            "SUBSCRIBE",
            [
                ("destination", ctx.topic()),
                ("id", "s-1"),
                ("content-length", "0"),
                ("receipt", rid),
            ],
        )
    )
    await probe.receipt(rid)


@check(
    "framing/large-body",
    26,
    SHOULD,
    "a 1 MiB binary body arrives intact",
    slow=8.0,
)
async def large_body(ctx: Context) -> None:
    body = bytes(range(256)) * 4096
    message = await delivered(
        ctx,
        lambda dest, rid: Frame("SEND", (("destination", dest), ("receipt", rid)), body).serialize(
            ctx.version
        ),
    )
    if message.body != body:
        raise Fail(f"the 1 MiB body came back as {len(message.body)} different bytes")


@check(
    "framing/oversized-headers",
    35,
    SHOULD,
    "a header block past the server's limit gets an ERROR and a close, not a hang",
    slow=8.0,
)
async def oversized_headers(ctx: Context) -> None:
    probe = await ctx.connected()
    size = 8 << 20
    rid = probe.receipt_id()
    bad = raw(
        "SEND",
        [("destination", ctx.topic()), ("x-huge", "x" * size), ("receipt", rid)],
        b"huge",
    )
    error = await refused(probe, bad, "an 8 MiB header", rid)
    if not await probe.closes():
        raise Fail(
            f"the server refused an 8 MiB header ({describe(error)}) but kept the "
            f"connection open for {ctx.timeout:g} s"
        )
