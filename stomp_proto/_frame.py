"""STOMP frames as values, header escaping per version, and serialization.

A :class:`Frame` is the wire unit: a command, an ordered tuple of
``(name, value)`` header pairs (unescaped, repeats kept, exactly as they came
or will go on the wire) and a binary body. It is a :class:`typing.NamedTuple`
so that the parser can build one with a single C-level tuple allocation.

Escaping (STOMP 1.1 and 1.2, "Value Encoding"): in every frame except
CONNECT, CONNECTED and STOMP, header names and values escape ``\\`` as
``\\\\``, LF as ``\\n``, ``:`` as ``\\c`` and, in 1.2 only, CR as ``\\r``.
STOMP 1.0 defines no escaping. A value the chosen version cannot represent
(an LF in a 1.0 or CONNECT header, a CR in a 1.1 header, ...) is refused
with :class:`LocalProtocolError` rather than written ambiguously.

Serialization always writes ``content-length`` for a non-empty body (1.1+
make it mandatory when the body contains NUL; RabbitMQ, Spring, Artemis and
stompjs write it for every body), unless the caller explicitly suppresses it
for a body without NUL.
"""

from __future__ import annotations

import re
from itertools import chain
from typing import NamedTuple

from ._errors import LocalProtocolError

__all__ = [
    "BODY_COMMANDS",
    "CLIENT_COMMANDS",
    "COMMANDS",
    "ESCAPE_EXEMPT_COMMANDS",
    "SERVER_COMMANDS",
    "SUPPORTED_VERSIONS",
    "Frame",
]

#: The STOMP versions stomp-proto speaks, lowest first.
SUPPORTED_VERSIONS: tuple[str, ...] = ("1.0", "1.1", "1.2")

#: Frames a client sends (STOMP and NACK exist from 1.1 on).
CLIENT_COMMANDS = frozenset(
    {
        "CONNECT",
        "STOMP",
        "SEND",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "ACK",
        "NACK",
        "BEGIN",
        "COMMIT",
        "ABORT",
        "DISCONNECT",
    }
)
#: Frames a server sends.
SERVER_COMMANDS = frozenset({"CONNECTED", "MESSAGE", "RECEIPT", "ERROR"})
#: Every command of STOMP 1.0, 1.1 and 1.2. Anything else is rejected.
COMMANDS = CLIENT_COMMANDS | SERVER_COMMANDS
#: The only frames that may carry a body in 1.1 and 1.2.
BODY_COMMANDS = frozenset({"SEND", "MESSAGE", "ERROR"})
#: Frames whose headers are never escaped (1.1/1.2 spec; STOMP as CONNECT's alias).
ESCAPE_EXEMPT_COMMANDS = frozenset({"CONNECT", "CONNECTED", "STOMP"})

_ESCAPE_11 = str.maketrans({"\\": "\\\\", "\n": "\\n", ":": "\\c"})
_ESCAPE_12 = str.maketrans({"\\": "\\\\", "\n": "\\n", ":": "\\c", "\r": "\\r"})
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]+)", re.IGNORECASE)


class Frame(NamedTuple):
    """One STOMP frame.

    Args:
        command: the command, e.g. ``"SEND"`` (case-sensitive).
        headers: ``(name, value)`` pairs in wire order, unescaped; repeated
            names are kept.
        body: the body octets.

    .. versionadded:: 0.1
    """

    command: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the value of the *first* header called ``name``.

        STOMP 1.2: "If a client or a server receives repeated frame header
        entries, only the first header entry SHOULD be used as the value".
        Returns ``default`` when there is no such header.
        """
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Return every value of header ``name``, in wire order (maybe empty)."""
        return [value for key, value in self.headers if key == name]

    def text(self, default_charset: str = "utf-8") -> str:
        """Decode the body as text.

        The charset comes from a ``content-type`` ``;charset=`` parameter when
        there is one (STOMP 1.1+: ``text/*`` defaults to UTF-8), otherwise
        ``default_charset``.
        """
        charset = default_charset
        content_type = self.get("content-type")
        if content_type is not None:
            match = _CHARSET.search(content_type)
            if match is not None:
                charset = match.group(1)
        return self.body.decode(charset)

    def serialize(self, version: str = "1.2", *, content_length: bool = True) -> bytes:
        """Return the wire bytes of this frame for a session of ``version``.

        Args:
            version: ``"1.0"``, ``"1.1"`` or ``"1.2"``; decides the escaping.
            content_length: when true (the default) a ``content-length`` header
                is added to a non-empty body that lacks one. Pass false to
                leave it out (ActiveMQ then delivers a JMS TextMessage); this
                is refused for a body containing NUL.

        Raises:
            LocalProtocolError: unknown command, a body on a frame that may
                not have one, a header the version cannot represent, or a
                ``content-length`` header that disagrees with the body.
        """
        command, headers, body = self
        if command not in COMMANDS or version not in _VERSIONS:
            _refuse(command, version)
        if body and command not in BODY_COMMANDS and version != "1.0":
            raise LocalProtocolError(f"a {command} frame cannot have a body in STOMP {version}")
        if headers:
            block = "\n".join(map(":".join, headers))
            count = len(headers)
            # Fast path: a few C-level scans prove that no name or value needs
            # escaping or validation (one colon per line, no backslash, CR or
            # LF inside a header, no empty name).
            if (
                "\\" in block
                or "\r" in block
                or block.count(":") != count
                or block.count("\n") != count - 1
                or block[0] == ":"
                or "\n:" in block
            ):
                block = _encode_headers(command, headers, version)
            at = block.find("content-length:")
            if at >= 0 and (at == 0 or block[at - 1] == "\n"):
                # The caller gave content-length: it must tell the truth.
                end = block.find("\n", at)
                if block[at + 15 : end if end >= 0 else None] != str(len(body)):
                    _declares_length(command, block, body)  # raises, naming the values
            elif at >= 0 and _declares_length(command, block, body):
                pass  # "content-length:" inside a value first, the header later
            elif body:
                block += _content_length_line(command, body, content_length)
            head = command + "\n" + block + "\n\n"
        elif body:
            head = command + _content_length_line(command, body, content_length) + "\n\n"
        else:
            head = command + "\n\n"
        return b"".join((head.encode(), body, b"\0"))


_VERSIONS = frozenset(SUPPORTED_VERSIONS)


def _refuse(command: str, version: str) -> None:
    if command not in COMMANDS:
        raise LocalProtocolError(f"cannot serialize unknown command {command[:40]!r}")
    raise LocalProtocolError(f"unsupported STOMP version {version!r}")


def _content_length_line(command: str, body: bytes, content_length: bool) -> str:
    """The header line (with its leading LF) that a non-empty body gets, or ""."""
    if content_length:
        return "\ncontent-length:" + str(len(body))
    if 0 in body:
        raise LocalProtocolError(f"a {command} body containing NUL needs a content-length header")
    return ""


def _declares_length(command: str, block: str, body: bytes) -> bool:
    """Whether ``block`` has a ``content-length`` header; check the first against ``body``."""
    at = block.find("content-length:")
    while at > 0 and block[at - 1] != "\n":
        at = block.find("content-length:", at + 1)
    if at < 0:
        return False  # only inside a value
    end = block.find("\n", at)
    declared = block[at + 15 :] if end < 0 else block[at + 15 : end]
    if declared != str(len(body)):
        raise LocalProtocolError(
            f"{command} header content-length:{declared[:20]} does not match "
            f"the {len(body)}-byte body"
        )
    return True


def _encode_headers(command: str, headers: tuple[tuple[str, str], ...], version: str) -> str:
    """Escape and validate every header; the slow path of :func:`serialize`."""
    if version == "1.0" or command in ESCAPE_EXEMPT_COMMANDS:
        for name, value in headers:
            _check_header(command, name, value, version, escaped=False)
        return "\n".join(map(":".join, headers))
    # All names and values in one string, separated by NUL, escaped with a
    # handful of C-level replaces rather than one translate per field.
    flat = "\0".join(chain.from_iterable(headers))
    fields = flat.split("\0")
    if (
        len(fields) != 2 * len(headers)
        or not all(fields[0::2])
        or (version == "1.1" and "\r" in flat)
    ):
        for name, value in headers:
            _check_header(command, name, value, version, escaped=True)
        # Only NUL inside a name or value is left: escape field by field.
        table = _ESCAPE_12 if version == "1.2" else _ESCAPE_11
        return "\n".join([n.translate(table) + ":" + v.translate(table) for n, v in headers])
    flat = flat.replace("\\", "\\\\").replace("\n", "\\n").replace(":", "\\c")
    if version == "1.2":
        flat = flat.replace("\r", "\\r")
    parts = iter(flat.split("\0"))
    return "\n".join(map(":".join, zip(parts, parts, strict=True)))


def _check_header(command: str, name: str, value: str, version: str, *, escaped: bool) -> None:
    """Refuse a header that ``version`` cannot carry in a ``command`` frame."""
    if not name:
        raise LocalProtocolError(f"{command} frame has a header with an empty name")
    if not escaped and ":" in name:
        raise LocalProtocolError(
            f"{command} header name {name[:40]!r} contains ':', which STOMP {version} "
            f"cannot represent in this frame"
        )
    for what, text in (("name", name), ("value", value)):
        if "\n" in text and not escaped:
            raise LocalProtocolError(
                f"{command} header {name[:40]!r} has a line feed in its {what}, which "
                f"STOMP {version} cannot represent in this frame"
            )
        if "\r" in text and not (escaped and version == "1.2"):
            raise LocalProtocolError(
                f"{command} header {name[:40]!r} has a carriage return in its {what}, "
                f"which STOMP {version} cannot represent in this frame"
            )
