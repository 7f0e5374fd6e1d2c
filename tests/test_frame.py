"""Frame.serialize: escaping per version, refusals, content-length (#22-#24, #28, #30, #32)."""

from __future__ import annotations

import pytest

from stomp_proto import Frame, LocalProtocolError

from .helpers import frames


def test_serialize_simple_frame_round_trips_exactly() -> None:
    data = b"SEND\ndestination:/q\ncontent-length:2\n\nhi\x00"
    (frame,) = frames(data)
    assert frame.serialize() == data


def test_no_headers() -> None:
    assert Frame("DISCONNECT").serialize() == b"DISCONNECT\n\n\x00"


def test_escaping_1_2() -> None:
    frame = Frame("MESSAGE", (("k:y", "a:b\\c\nd\re"),))
    assert frame.serialize("1.2") == b"MESSAGE\nk\\cy:a\\cb\\\\c\\nd\\re\n\n\x00"


def test_escaping_1_1() -> None:
    frame = Frame("MESSAGE", (("k:y", "a:b\\c\nd"),))
    assert frame.serialize("1.1") == b"MESSAGE\nk\\cy:a\\cb\\\\c\\nd\n\n\x00"


def test_cr_cannot_be_written_in_1_1() -> None:
    with pytest.raises(LocalProtocolError, match="carriage return in its value"):
        Frame("MESSAGE", (("k", "a\rb"),)).serialize("1.1")


@pytest.mark.parametrize("command", ["CONNECT", "CONNECTED", "STOMP"])
def test_connect_frames_are_not_escaped(command: str) -> None:
    frame = Frame(command, (("passcode", "a:b\\c"),))
    assert frame.serialize("1.2") == command.encode() + b"\npasscode:a:b\\c\n\n\x00"


@pytest.mark.parametrize(
    ("command", "version", "headers", "match"),
    [
        ("CONNECT", "1.2", (("login", "a\nb"),), "line feed in its value"),
        ("CONNECT", "1.2", (("login", "a\rb"),), "carriage return in its value"),
        ("CONNECTED", "1.1", (("a:b", "x"),), "contains ':'"),
        ("SEND", "1.0", (("h", "a\nb"),), "line feed in its value"),
        ("SEND", "1.0", (("h\n", "x"),), "line feed in its name"),
        ("SEND", "1.0", (("a:b", "x"),), "contains ':'"),
        ("SEND", "1.0", (("h", "a\rb"),), "carriage return"),
        ("SEND", "1.2", (("", "x"),), "empty name"),
        ("SEND", "1.0", (("", "x"),), "empty name"),
        ("SEND", "1.1", (("h\r", "x"),), "carriage return in its name"),
    ],
)
def test_unrepresentable_headers_are_refused(
    command: str, version: str, headers: tuple[tuple[str, str], ...], match: str
) -> None:
    with pytest.raises(LocalProtocolError, match=match) as info:
        Frame(command, headers).serialize(version)
    assert command in info.value.message


def test_raw_colon_in_1_0_value_is_fine() -> None:
    assert Frame("SEND", (("h", "a:b"),)).serialize("1.0") == b"SEND\nh:a:b\n\n\x00"


def test_no_escaping_in_1_0() -> None:
    assert Frame("SEND", (("h", "a\\b"),)).serialize("1.0") == b"SEND\nh:a\\b\n\n\x00"


def test_content_length_added_for_non_empty_bodies() -> None:
    assert Frame("SEND", (), b"\x00").serialize() == b"SEND\ncontent-length:1\n\n\x00\x00"
    assert Frame("SEND", (), b"").serialize() == b"SEND\n\n\x00"


def test_content_length_counts_octets() -> None:
    (frame,) = frames(Frame("SEND", (), "é".encode()).serialize())
    assert frame.get("content-length") == "2"


def test_given_content_length_is_kept_when_right() -> None:
    data = Frame("SEND", (("content-length", "2"),), b"ab").serialize()
    assert data == b"SEND\ncontent-length:2\n\nab\x00"


def test_given_content_length_must_match() -> None:
    with pytest.raises(LocalProtocolError, match="content-length:3 does not match the 2-byte"):
        Frame("SEND", (("content-length", "3"),), b"ab").serialize()
    with pytest.raises(LocalProtocolError, match="does not match the 0-byte"):
        Frame("SEND", (("content-length", "3"),)).serialize()


def test_content_length_text_inside_a_value_is_not_a_header() -> None:
    frame = Frame("CONNECT", (("x", "content-length:5"),))
    assert frame.serialize() == b"CONNECT\nx:content-length:5\n\n\x00"
    frame = Frame("SEND", (("x", "a"), ("y", "content-length:5")), b"ab")
    assert frame.serialize("1.0") == b"SEND\nx:a\ny:content-length:5\ncontent-length:2\n\nab\x00"
    frame = Frame("SEND", (("y", "content-length:5"), ("content-length", "2")), b"ab")
    assert frame.serialize("1.0") == b"SEND\ny:content-length:5\ncontent-length:2\n\nab\x00"
    with pytest.raises(LocalProtocolError, match="content-length:3 does not match"):
        Frame("SEND", (("y", "content-length:5"), ("content-length", "3")), b"ab").serialize("1.0")


def test_content_length_can_be_suppressed_without_nul() -> None:
    assert Frame("SEND", (), b"hi").serialize(content_length=False) == b"SEND\n\nhi\x00"
    with pytest.raises(LocalProtocolError, match="containing NUL needs a content-length"):
        Frame("SEND", (), b"h\x00i").serialize(content_length=False)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("command", ["SUBSCRIBE", "RECEIPT", "ACK", "CONNECT"])
def test_body_refused_on_other_frames(command: str, version: str) -> None:
    with pytest.raises(LocalProtocolError, match=f"a {command} frame cannot have a body"):
        Frame(command, (), b"x").serialize(version)


def test_body_allowed_anywhere_in_1_0() -> None:
    assert Frame("SUBSCRIBE", (), b"x").serialize("1.0").endswith(b"\n\nx\x00")


def test_unknown_command_and_version() -> None:
    with pytest.raises(LocalProtocolError, match="unknown command 'send'"):
        Frame("send").serialize()
    with pytest.raises(LocalProtocolError, match="unsupported STOMP version '1.3'"):
        Frame("SEND").serialize("1.3")


def test_serialized_frames_contain_no_cr_outside_bodies() -> None:
    data = Frame("MESSAGE", (("a", "b\rc"),), b"\r\n").serialize("1.2")
    head = data[: data.index(b"\n\n")]
    assert b"\r" not in head
