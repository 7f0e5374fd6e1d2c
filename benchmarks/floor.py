"""The floor: the simplest honest pure-Python STOMP splitter and serializer.

Every figure in the table is a ratio to these two, timed in the same process. They do what any
pure-Python parser must do at the least and nothing more:

- parse: one ``bytearray`` receive buffer, positions instead of copies, ``find`` the blank line
  (resuming where the last search stopped, so trickling data is scanned once), split the header
  lines, partition each at the first colon, unescape only when a backslash is present, honour
  ``content-length`` (else ``find`` the NUL), skip EOLs between frames, drop consumed bytes with
  one ``del`` per ``feed``. No validation of any kind, no CRLF, no limits, no events: a frame is
  the tuple ``(command, headers, body)``.
- serialize: join ``name:value`` lines, escape only when a special character is present (checked
  with a few C-level string scans over the joined header block), one ``b"".join`` per frame. It
  emits the headers it is given (content-length included) and checks nothing.

A library that validates everything will not reach 1.0; the point is to show how much of the
floor's speed it keeps.
"""

from __future__ import annotations

_BIG_BODY = 2048  # above this a body is copied once through a memoryview instead of twice


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    if "\\\\" in text:
        # Split on escaped backslashes first so "\\\\n" stays a backslash followed by "n".
        return "\\".join(
            part.replace("\\n", "\n").replace("\\c", ":").replace("\\r", "\r")
            for part in text.split("\\\\")
        )
    return text.replace("\\n", "\n").replace("\\c", ":").replace("\\r", "\r")


class FloorParser:
    """Incremental splitter: ``feed(data)`` returns the list of frames completed by ``data``."""

    __slots__ = ("_buf", "_head", "_scan")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scan = 0  # where the next search resumes (offset into _buf)
        self._head: tuple | None = None  # parsed header block of an incomplete frame

    def feed(self, data: bytes) -> list:
        buf = self._buf
        buf += data
        size = len(buf)
        frames: list = []
        append = frames.append
        pos = 0  # start of the frame being parsed
        scan = self._scan
        head = self._head
        while True:
            if head is None:
                while pos < size and buf[pos] == 10:  # EOLs (heart-beats) between frames
                    pos += 1
                end = buf.find(b"\n\n", scan if scan > pos else pos)
                if end < 0:
                    scan = size - 1 if size - 1 > pos else pos
                    break
                text = buf[pos:end].decode()
                lines = text.split("\n")
                command = lines[0]
                del lines[0]
                headers = []
                add = headers.append
                # (A plain loop: on CPython 3.11 it beats a comprehension over partition().)
                if "\\" in text:
                    for line in lines:
                        name, _, value = line.partition(":")
                        add((_unescape(name), _unescape(value)))
                else:
                    for line in lines:
                        name, _, value = line.partition(":")
                        add((name, value))
                at = text.find("\ncontent-length:")
                if at < 0:
                    length = -1
                else:
                    stop = text.find("\n", at + 16)
                    length = int(text[at + 16 :] if stop < 0 else text[at + 16 : stop])
                body_at = end + 2
                scan = body_at
            else:
                command, headers, body_at, length = head
                head = None
            if length >= 0:
                nul = body_at + length
                if nul >= size:
                    head = (command, headers, body_at, length)
                    break
            else:
                nul = buf.find(b"\0", scan)
                if nul < 0:
                    head = (command, headers, body_at, length)
                    scan = size
                    break
            if nul - body_at < _BIG_BODY:
                append((command, headers, bytes(buf[body_at:nul])))
            else:
                append((command, headers, memoryview(buf)[body_at:nul].tobytes()))
            pos = nul + 1  # skip the NUL (not checked)
            scan = pos
        if pos:
            del buf[:pos]
            scan -= pos
            if head is not None:
                head = (head[0], head[1], head[2] - pos, head[3])
        self._scan = scan
        self._head = head
        return frames


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace(":", "\\c")


def floor_serialize(frame: tuple) -> bytes:
    """Return the STOMP 1.2 bytes of ``(command, headers, body)``."""
    command, headers, body = frame
    if headers:
        head = "\n".join(map(":".join, headers))
        count = len(headers)
        if (
            "\\" in head
            or "\r" in head
            or head.count(":") != count
            or head.count("\n") != count - 1
        ):
            head = "\n".join([f"{_escape(n)}:{_escape(v)}" for n, v in headers])
        return b"".join(((command + "\n" + head + "\n\n").encode(), body, b"\0"))
    return b"".join(((command + "\n\n").encode(), body, b"\0"))
