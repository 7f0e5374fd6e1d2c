"""The incremental frame parser.

Strategy (the one h11's receive buffer uses, applied to STOMP):

* One :class:`bytearray` holds unconsumed input. Consumed bytes are dropped
  with a single ``del`` per :meth:`FrameParser.receive_data` call, never per
  frame, so a 64 KiB read holding hundreds of frames costs one memmove.
* Searches remember how far they got: a header block that trickles in a few
  bytes at a time is scanned once (``_header_scan``), and so is a body that
  ends at NUL (``_body_scan``). Parsing is linear in the input however it is
  chunked.
* The end of the header block is found with ``bytes.find`` (``\\n\\n``, or
  ``\\n\\r\\n`` for CRLF frames, searched only up to the first hit); the block
  is decoded as UTF-8 once and split into lines at C speed. Unescaping runs
  only when a backslash is present. With ``content-length`` the parser jumps
  straight to the NUL that must follow; without it, ``find(b"\\0")``.
* Limits are checked while a frame is still incomplete: the header block
  cannot grow past ``max_header_size`` bytes, and a ``content-length`` over
  ``max_body_size`` is refused as soon as the headers are read. The header
  block limit counts the same bytes however the input is chunked.

Between frames, each EOL (LF, or CR LF) is a :class:`Heartbeat`; stray NUL
octets are skipped (STOMP grammar says ``*( EOL )`` after a frame; every
broker surveyed also skips NULs and EOLs before the first frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from ._errors import LocalProtocolError, RemoteProtocolError, StickyError
from ._events import HEARTBEAT, Heartbeat
from ._frame import BODY_COMMANDS, COMMANDS, ESCAPE_EXEMPT_COMMANDS, SUPPORTED_VERSIONS, Frame

__all__ = ["DEFAULT_LIMITS", "FrameParser"]

#: Default limits. The header block (command and headers) gets 64 KiB: ActiveMQ
#: allows 10 KiB per header line and 1,000 headers, real traffic uses a few
#: hundred bytes. 1,000 headers matches ActiveMQ. Bodies get 16 MiB: RabbitMQ's
#: whole-frame default is 4 MiB, ActiveMQ's 100 MiB; 16 MiB carries
#: multi-megabyte payloads while keeping one connection's buffer bounded.
DEFAULT_LIMITS = {"max_header_size": 64 * 1024, "max_headers": 1000, "max_body_size": 16 << 20}

_UNESCAPE_11 = {"n": "\n", "c": ":", "\\": "\\"}
_UNESCAPE_12 = {"n": "\n", "c": ":", "\\": "\\", "r": "\r"}

Parsed = Frame | Heartbeat
_new_frame = tuple.__new__
_INTERFRAME = frozenset(b"\n\r\x00")
# Bodies up to this size are copied by slicing; larger ones once, through a memoryview.
_BIG_BODY = 2048
# Every byte string a frame may begin with, up to and including its command
# line's EOL ("S", "SE", ..., "SEND\r", "SEND\r\n", "SEND\n").
_COMMAND_LINE_PREFIXES = frozenset(
    line[:n]
    for command in COMMANDS
    for line in (command.encode() + b"\n", command.encode() + b"\r\n")
    for n in range(1, len(line) + 1)
)
_HEAD_LENGTH = max(map(len, _COMMAND_LINE_PREFIXES))  # "UNSUBSCRIBE\r\n"
# An incomplete header block leaves its search 3 bytes before the end of the
# buffer, so a resumed search at least this far in means an earlier call saw
# a whole command line's worth of bytes and checked it.
_HEAD_CHECKED = _HEAD_LENGTH - 3
# How an incomplete header block may end with the start of its last EOL and
# blank line, longest first.
_TERMINATOR_STARTS = (b"\r\n\r", b"\n\r", b"\r\n", b"\n", b"\r")


def _unescape(text: str, table: dict[str, str]) -> str:
    """Decode STOMP escapes in ``text``; raise ``ValueError(escape)`` on an undefined one."""
    parts = text.split("\\")
    out = [parts[0]]
    i, n = 1, len(parts)
    while i < n:
        part = parts[i]
        if not part:
            # An escaped backslash ("\\\\") splits into an empty part followed
            # by the text after it; an empty *last* part is a trailing "\\".
            if i + 1 == n:
                raise ValueError("\\")
            out.append("\\")
            out.append(parts[i + 1])
            i += 2
            continue
        replacement = table.get(part[0])
        if replacement is None:
            raise ValueError("\\" + part[0])
        out.append(replacement)
        out.append(part[1:])
        i += 1
    return "".join(out)


class FrameParser:
    """Turn a byte stream into :class:`Frame` and :class:`Heartbeat` values.

    Args:
        version: the STOMP version whose rules apply (escaping, CR handling).
            Assign :attr:`version` when a session negotiates another one.
        max_header_size: largest command + header block, in bytes.
        max_headers: most header lines in one frame.
        max_body_size: largest body, in bytes.

    Feed it with :meth:`receive_data` and pull frames with :meth:`next_frame`,
    or do both at once with :meth:`feed`. Any malformed input raises
    :class:`RemoteProtocolError`; after that the parser raises the same error
    again on every call.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        version: str = "1.2",
        *,
        max_header_size: int = DEFAULT_LIMITS["max_header_size"],
        max_headers: int = DEFAULT_LIMITS["max_headers"],
        max_body_size: int = DEFAULT_LIMITS["max_body_size"],
    ) -> None:
        self.version = version
        self.max_header_size = max_header_size
        self.max_headers = max_headers
        self.max_body_size = max_body_size
        self._buf = bytearray()
        self._pos = 0  # index in _buf of the first unconsumed byte
        self._offset = 0  # stream offset of _buf[0], for error messages
        self._header_scan = 0  # where the search for the blank line resumes
        self._body_scan = 0  # where the search for the body's NUL resumes
        self._pending: tuple[str, tuple[tuple[str, str], ...], int | None] | None = None
        self._body_start = 0
        self._eof = False
        self._error: StickyError | None = None  # (not the exception: see StickyError)

    @property
    def version(self) -> str:
        """The STOMP version whose framing rules are applied."""
        return self._version

    @version.setter
    def version(self, version: str) -> None:
        if version not in SUPPORTED_VERSIONS:
            raise LocalProtocolError(f"unsupported STOMP version {version!r}")
        self._version = version
        self._unescape_table = (
            None if version == "1.0" else _UNESCAPE_12 if version == "1.2" else _UNESCAPE_11
        )

    @property
    def buffered(self) -> int:
        """How many received bytes are not yet part of a returned frame."""
        return len(self._buf) - self._pos

    @property
    def at_eof(self) -> bool:
        """True once EOF was received and every complete frame was returned."""
        return self._eof and self._pos == len(self._buf)

    def receive_data(self, data: bytes) -> None:
        """Buffer ``data``; ``b""`` means the peer closed the stream (EOF)."""
        if self._eof:
            raise LocalProtocolError("received data after EOF")
        if not data:
            self._eof = True
            return
        pos = self._pos
        if pos:
            del self._buf[:pos]
            self._offset += pos
            self._pos = 0
            self._header_scan = max(self._header_scan - pos, 0)
            self._body_scan -= pos
            self._body_start -= pos
        self._buf += data

    def feed(self, data: bytes) -> list[Parsed]:
        """Buffer ``data`` (``b""`` = EOF) and return every complete frame and heart-beat.

        A convenience loop over :meth:`next_frame`. If the input turns bad
        after some good frames, those frames are returned and the error is
        raised by the next call, so that nothing already received is lost.
        """
        self.receive_data(data)
        out: list[Parsed] = []
        append = out.append
        next_frame = self.next_frame
        try:
            while (item := next_frame()) is not None:
                append(item)
        except RemoteProtocolError:
            if not out:
                raise
        return out

    def next_frame(self) -> Parsed | None:
        """Return the next frame or heart-beat, or None if more data is needed.

        This is the parser's one entry point (:meth:`feed` and the connections
        loop over it) and its hot path. At EOF, None means the stream ended
        cleanly between frames (see :attr:`at_eof`); EOF inside a frame
        raises :class:`RemoteProtocolError`. After an error, every call raises
        it again.

        .. versionchanged:: 0.2
           The connections use it too; it is as fast as the internal loop it
           replaces.
        """
        if self._pending is not None or self._error is not None:
            return self._resume()
        buf = self._buf
        pos = self._pos
        end = len(buf)
        if pos == end:
            return None
        try:
            if buf[pos] in _INTERFRAME:
                return self._between(pos)
            # Find the blank line that ends the header block: "\n\n", or "\n\r\n"
            # for CRLF frames (searched only up to the first "\n\n").
            scan = self._header_scan
            if scan < pos:
                scan = pos
            blank = buf.find(b"\n\n", scan)
            if blank < 0:
                crlf = buf.find(b"\n\r\n", scan)
                if crlf < 0:
                    # The blank line has not arrived. The command line is
                    # checked while an earlier call may not have seen all of
                    # it (see _check_command_line), the size limit once it
                    # may be exceeded (see _check_block_size).
                    if scan - pos < _HEAD_CHECKED:
                        nl = buf.find(b"\n", pos, pos + _HEAD_LENGTH)
                        head = bytes(buf[pos : pos + _HEAD_LENGTH if nl < 0 else nl + 1])
                        if head not in _COMMAND_LINE_PREFIXES:
                            self._check_command_line(pos)
                    if end - pos > self.max_header_size:
                        self._check_block_size(pos, end, complete=False)
                    self._header_scan = end - 3 if end - 3 > pos else pos
                    if self._eof:
                        self._need_more()
                    return None
            else:
                crlf = buf.find(b"\n\r\n", scan, blank + 2)
            if crlf >= 0:
                block_end, body_start = crlf, crlf + 3
            else:
                block_end, body_start = blank, blank + 2
            if block_end - pos > self.max_header_size:
                self._check_block_size(pos, block_end)
            try:
                text = buf[pos:block_end].decode()
            except UnicodeDecodeError as exc:
                self._check_command_line(pos)
                self._fail("invalid UTF-8 in the command or headers", pos + exc.start)
            if "\r" in text:
                text = self._strip_cr(text, pos)
            lines = text.split("\n")
            command = lines[0]
            if command not in COMMANDS:
                self._check_command_line(pos)
                self._fail(f"unknown command {command[:40]!r}", pos)  # pragma: no cover
            del lines[0]
            if len(lines) > self.max_headers:
                self._fail(f"{command} frame has more than {self.max_headers} headers", pos)
            if "\\" in text and self._unescape_table is not None:
                headers = self._escaped_headers(command, lines, pos)
            else:
                headers = []
                append = headers.append
                for line in lines:
                    name, colon, value = line.partition(":")
                    if not name or not colon:
                        self._bad_line(command, line, pos)
                    append((name, value))
            at = text.find("\ncontent-length:")
            if at >= 0:
                at += 16
                nl = text.find("\n", at)
                value = text[at:] if nl < 0 else text[at:nl]
                if (
                    value.isdigit()
                    and value.isascii()
                    and len(value) < 10
                    and (length := int(value)) <= self.max_body_size
                    and (not length or command in BODY_COMMANDS or self._version == "1.0")
                ):
                    pass  # the common case: small and well formed
                else:
                    self._bad_content_length(command, value, headers, pos)
                stop = body_start + length
                if stop >= end:
                    self._wait_for_body(command, headers, length, body_start)
                    if self._eof:
                        self._need_more()
                    return None
                if buf[stop]:
                    self._no_nul(command, headers, length, stop)
            else:
                stop = buf.find(b"\0", body_start)
                if stop < 0:
                    self._wait_for_body(command, headers, None, body_start)
                    if self._eof:
                        self._need_more()
                    return None
                if stop > body_start:
                    self._check_body(command, headers, body_start, stop)
            self._pos = stop + 1
            if stop - body_start < _BIG_BODY:
                return _new_frame(Frame, (command, tuple(headers), bytes(buf[body_start:stop])))
            with memoryview(buf) as view:
                body = view[body_start:stop].tobytes()
            return _new_frame(Frame, (command, tuple(headers), body))
        except RemoteProtocolError as exc:
            self._error = StickyError(exc)
            raise

    # -- internals ---------------------------------------------------------

    def _resume(self) -> Parsed | None:
        """:meth:`next_frame` after an error, or with a body still arriving."""
        if self._error is not None:
            raise self._error.get()
        try:
            item = self._pending_body()
            if item is None and self._eof:
                self._fail("the stream ended in the middle of a frame", self._pos)
        except RemoteProtocolError as exc:
            self._error = StickyError(exc)
            raise
        return item

    def _need_more(self) -> NoReturn:
        """An incomplete frame at EOF."""
        self._fail("the stream ended in the middle of a frame", self._pos)

    def _fail(self, what: str, index: int, receipt: str | None = None) -> NoReturn:
        raise RemoteProtocolError(f"{what} (at byte {self._offset + index})", receipt_id=receipt)

    def _between(self, pos: int) -> Parsed | None:
        """Handle EOLs and NULs at ``pos``, between frames; advance past them."""
        buf = self._buf
        end = len(buf)
        while pos < end:
            octet = buf[pos]
            if octet == 10:
                self._pos = pos + 1
                return HEARTBEAT
            if octet == 13:
                if pos + 1 == end:
                    break
                if buf[pos + 1] != 10:
                    self._pos = pos
                    self._fail("CR not followed by LF between frames", pos)
                self._pos = pos + 2
                return HEARTBEAT
            if octet:
                break
            pos += 1  # a stray NUL between frames
        self._pos = pos
        if pos == end:
            return None
        if end - pos == 1 and buf[pos] == 13:
            if self._eof:
                self._need_more()
            return None
        return self.next_frame()

    def _check_block_size(self, pos: int, block_end: int, *, complete: bool = True) -> None:
        """Refuse a header block longer than ``max_header_size``.

        The block is the command and header lines, without the EOL of the last
        line and the blank line after it, so LF and CR LF frames of the same
        lines differ only by their inner CRs. ``block_end`` is the LF that
        ends the last line; for an incomplete block, the end of the buffer,
        which may hold the start of that EOL and blank line.
        """
        buf = self._buf
        if complete:
            if buf[block_end - 1] == 13:
                block_end -= 1
        else:
            # (No tail reaches back before pos: a frame begins with neither CR nor LF.)
            for tail in _TERMINATOR_STARTS:
                if buf.endswith(tail):
                    block_end -= len(tail)
                    break
        if block_end - pos > self.max_header_size:
            self._check_command_line(pos)
            self._fail(f"header block exceeds the {self.max_header_size}-byte limit", pos)

    def _check_command_line(self, pos: int) -> None:
        """Refuse the frame at ``pos`` at the first byte no STOMP command line has there.

        A command line is one of the STOMP commands (uppercase ASCII) and an
        EOL, so a TLS ClientHello (0x16), an HTTP request or any other
        protocol is refused at its first bytes rather than held until a blank
        line (stomp-notes #2, #81). Returns when what has arrived so far can
        still begin a command line.
        """
        buf = self._buf
        head = bytes(buf[pos : pos + _HEAD_LENGTH])
        nl = head.find(b"\n")
        if nl >= 0:
            head = head[: nl + 1]
        if head in _COMMAND_LINE_PREFIXES:
            return
        bad = next(i for i in range(len(head)) if head[: i + 1] not in _COMMAND_LINE_PREFIXES)
        if bad and head[bad - 1] == 13:
            self._fail("CR not followed by LF in the command or headers", pos)
        line = bytes(buf[pos : pos + 40]).partition(b"\n")[0]
        if line.endswith(b"\r"):
            line = line[:-1]
        shown = line.decode("utf-8", "replace")
        what = "begin" if bad == 0 else "continue"
        self._fail(
            f"unknown command {shown!r}: byte 0x{head[bad]:02x} at byte "
            f"{self._offset + pos + bad} cannot {what} a STOMP command line",
            pos,
        )

    def _strip_cr(self, text: str, pos: int) -> str:
        text = text.replace("\r\n", "\n")
        if text[-1] == "\r":
            text = text[:-1]
        if "\r" in text:
            self._check_command_line(pos)
            # 1.2 forbids it; in 1.0/1.1 the grammar allows a raw CR inside a
            # value, but no version could write it back unambiguously, so it is
            # refused in every version, as RabbitMQ and Spring do.
            self._fail("CR not followed by LF in the command or headers", pos)
        return text

    def _escaped_headers(self, command: str, lines: list[str], pos: int) -> list[tuple[str, str]]:
        table = self._unescape_table
        assert table is not None
        if command in ESCAPE_EXEMPT_COMMANDS:
            table = None
        headers = []
        for line in lines:
            name, colon, value = line.partition(":")
            if not name or not colon:
                self._bad_line(command, line, pos)
            if table is None or ("\\" not in name and "\\" not in value):
                headers.append((name, value))
                continue
            try:
                headers.append((_unescape(name, table), _unescape(value, table)))
            except ValueError as exc:
                self._fail(
                    f"{command} header {name[:40]!r} uses the undefined escape "
                    f"{exc.args[0]!r} (STOMP {self._version})",
                    pos,
                )
        return headers

    def _wait_for_body(
        self, command: str, headers: list[tuple[str, str]], length: int | None, start: int
    ) -> None:
        """Remember a parsed header block whose body has not fully arrived."""
        self._pending = (command, tuple(headers), length)
        self._body_start = start
        self._body_scan = len(self._buf)
        if length is None and len(self._buf) - start > self.max_body_size:
            self._check_body(command, headers, start, len(self._buf))

    def _check_body(
        self, command: str, headers: Sequence[tuple[str, str]], start: int, stop: int
    ) -> None:
        if stop - start > self.max_body_size:
            self._fail(
                f"{command} body exceeds the {self.max_body_size}-byte limit",
                start,
                _receipt(headers),
            )
        if self._version != "1.0" and command not in BODY_COMMANDS:
            self._fail(f"a {command} frame cannot have a body", start, _receipt(headers))

    def _no_nul(
        self, command: str, headers: Sequence[tuple[str, str]], length: int, stop: int
    ) -> NoReturn:
        self._fail(
            f"{command} body of content-length:{length} is followed by "
            f"{bytes(self._buf[stop : stop + 1])!r}, not NUL",
            stop,
            _receipt(headers),
        )

    def _pending_body(self) -> Frame | None:
        """Continue a frame whose headers were parsed by an earlier call."""
        assert self._pending is not None
        command, headers, length = self._pending
        buf = self._buf
        start = self._body_start
        if length is not None:
            stop = start + length
            if len(buf) <= stop:
                return None
            if buf[stop]:
                self._no_nul(command, headers, length, stop)
        else:
            stop = buf.find(b"\0", self._body_scan)
            if stop < 0:
                self._body_scan = len(buf)
                if len(buf) - start > self.max_body_size:
                    self._check_body(command, headers, start, len(buf))
                return None
            if stop > start:
                self._check_body(command, headers, start, stop)
        self._pending = None
        self._pos = stop + 1
        with memoryview(buf) as view:
            body = view[start:stop].tobytes()
        return _new_frame(Frame, (command, headers, body))

    def _bad_line(self, command: str, line: str, pos: int) -> NoReturn:
        what = "has an empty name" if line.startswith(":") else "has no ':'"
        self._fail(f"{command} header line {line[:40]!r} {what}", pos)

    def _bad_content_length(
        self, command: str, value: str, headers: list[tuple[str, str]], pos: int
    ) -> NoReturn:
        receipt = _receipt(headers)
        if not (value.isascii() and value.isdigit()):
            self._fail(
                f"{command} header content-length:{value[:20]!r} is not a decimal integer",
                pos,
                receipt,
            )
        if len(value) > 18 or int(value) > self.max_body_size:
            self._fail(
                f"{command} content-length:{value[:20]} exceeds the "
                f"{self.max_body_size}-byte body limit",
                pos,
                receipt,
            )
        self._fail(f"a {command} frame cannot have a body (content-length:{value})", pos, receipt)


def _receipt(headers: Sequence[tuple[str, str]]) -> str | None:
    return next((value for name, value in headers if name == "receipt"), None)
