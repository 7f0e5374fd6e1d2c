"""FrameParser: STOMP framing per stomp-notes §1 and requirements 1-35."""

from __future__ import annotations

import pytest

from stomp_proto import Frame, FrameParser, Heartbeat, LocalProtocolError, RemoteProtocolError
from stomp_proto._frame import COMMANDS

from .helpers import frames, parse, parse_error, parse_whole

HB = Heartbeat()


# -- #1, #10: layout, several frames in one chunk ------------------------------


def test_basic_frame() -> None:
    assert parse(b"SEND\ndestination:/q\n\nhi\x00") == [
        Frame("SEND", (("destination", "/q"),), b"hi")
    ]


def test_frame_without_headers_or_body() -> None:
    assert parse(b"DISCONNECT\n\n\x00") == [Frame("DISCONNECT")]


def test_several_frames_and_heartbeats_in_order() -> None:
    data = b"\nSEND\ndestination:/a\n\n1\x00\nSEND\ndestination:/b\n\n2\x00SEND\ndestination:/c\n\n3\x00"
    assert parse(data) == [
        HB,
        Frame("SEND", (("destination", "/a"),), b"1"),
        HB,
        Frame("SEND", (("destination", "/b"),), b"2"),
        Frame("SEND", (("destination", "/c"),), b"3"),
    ]


def test_trailing_data_stays_buffered() -> None:
    parser = FrameParser()
    assert parser.feed(b"SEND\ndestination:/q\n\nhi\x00SEND\ndest") == [
        Frame("SEND", (("destination", "/q"),), b"hi")
    ]
    assert parser.buffered == len(b"SEND\ndest")
    assert parser.feed(b"ination:/r\n\n\x00") == [Frame("SEND", (("destination", "/r"),))]
    assert parser.buffered == 0


# -- #2, #81: commands are case-sensitive; unknown ones rejected ---------------


@pytest.mark.parametrize("command", [b"send", b"Send", b"FOO", b"SEND ", b" SEND"])
def test_unknown_command(command: bytes) -> None:
    exc = parse_error(command + b"\n\n\x00")
    assert "unknown command" in exc.message
    assert repr(command.decode()) in exc.message
    assert "at byte 0" in exc.message


# Issue 9 item 17: bytes that cannot begin a command line are refused at once,
# not held until a blank line that never comes.

TLS_CLIENT_HELLO = bytes.fromhex("160301020001000001fc0303") + bytes(32)


def test_tls_client_hello_is_refused_at_its_first_byte() -> None:
    parser = FrameParser()
    with pytest.raises(RemoteProtocolError) as info:
        parser.feed(TLS_CLIENT_HELLO)
    assert "byte 0x16 at byte 0 cannot begin a STOMP command line" in info.value.message
    parser = FrameParser()
    with pytest.raises(RemoteProtocolError, match="byte 0x16 at byte 0"):
        parser.feed(TLS_CLIENT_HELLO[:1])


@pytest.mark.parametrize(
    ("data", "byte", "offset", "what"),
    [
        (b"GET / HTTP/1.1\r\n", 0x47, 0, "begin"),
        (b"SENX", 0x58, 3, "continue"),
        (b"SENDS", 0x53, 4, "continue"),
        (b"CONNECTEDX", 0x58, 9, "continue"),
        (b"\n\r\n\x00PUT", 0x50, 4, "begin"),
        (b"DISCONNECT\n\n\x00\nsend", 0x73, 14, "begin"),
        (b"SEND\xc3\xa9", 0xC3, 4, "continue"),
    ],
)
def test_impossible_command_bytes_are_refused_as_they_arrive(
    data: bytes, byte: int, offset: int, what: str
) -> None:
    parser = FrameParser()
    for i in range(offset):
        parser.feed(data[i : i + 1])  # until then, what came can begin a command line
    with pytest.raises(RemoteProtocolError) as info:
        parser.feed(data[offset : offset + 1])
    expected = f"byte 0x{byte:02x} at byte {offset} cannot {what} a STOMP command line"
    assert expected in info.value.message
    exc = parse_error(data)
    assert expected in exc.message


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_every_command_line_prefix_waits_for_more(command: str, eol: bytes) -> None:
    line = command.encode() + eol
    parser = FrameParser()
    for i in range(len(line)):
        assert parser.feed(line[i : i + 1]) == []
    assert parser.buffered == len(line)


def test_a_header_block_trickling_in_after_a_valid_command_line() -> None:
    parser = FrameParser()
    parser.feed(b"SUBSCRIBE\ndestination:/q")
    for _ in range(50):
        assert parser.feed(b"/x") == []
    assert parser.feed(b"\n\n\x00")[0] == Frame("SUBSCRIBE", (("destination", "/q" + "/x" * 50),))


def test_error_offset_counts_consumed_bytes() -> None:
    exc = parse_error(b"\n\nDISCONNECT\n\n\x00FOO\n\n\x00")
    assert "at byte 15" in exc.message


@pytest.mark.parametrize(
    "command",
    [
        "CONNECT",
        "STOMP",
        "CONNECTED",
        "SEND",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "ACK",
        "NACK",
        "BEGIN",
        "COMMIT",
        "ABORT",
        "DISCONNECT",
        "MESSAGE",
        "RECEIPT",
        "ERROR",
    ],
)
def test_every_command_parses(command: str) -> None:
    assert frames(command.encode() + b"\n\n\x00") == [Frame(command)]


def test_header_names_are_case_sensitive() -> None:
    (frame,) = frames(b"SEND\nDestination:/q\n\n\x00")
    assert frame.get("destination") is None
    assert frame.get("Destination") == "/q"


# -- #3, #4, #5: EOL handling ---------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_crlf_frames(version: str) -> None:
    lf = frames(b"SEND\ndestination:/q\nx:y\n\nhi\x00", version)
    crlf = frames(b"SEND\r\ndestination:/q\r\nx:y\r\n\r\nhi\x00", version)
    assert lf == crlf


@pytest.mark.parametrize(
    "data",
    [
        b"SEND\r\ndestination:/q\n\n\x00",
        b"SEND\ndestination:/q\r\n\n\x00",
        b"SEND\ndestination:/q\n\r\n\x00",
        b"SEND\r\n\r\n\x00",
    ],
)
def test_mixed_eols(data: bytes) -> None:
    (frame,) = frames(data)
    assert frame.command == "SEND"
    assert frame.body == b""


def test_crlf_blank_line_right_after_lf_line_is_found() -> None:
    # "\n\r\n" begins before the first "\n\n": the CRLF blank line wins.
    assert frames(b"SEND\r\n\r\n\nx\x00") == [Frame("SEND", (), b"\nx")]


def test_lone_cr_in_headers_is_an_error_in_1_2() -> None:
    exc = parse_error(b"SEND\rX\ndestination:/q\n\n\x00")
    assert "CR not followed by LF" in exc.message


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_lone_cr_in_a_value_is_refused_in_every_version(version: str) -> None:
    # The 1.0/1.1 grammar allows it, but no version can write it back (RabbitMQ
    # and Spring refuse it too): a broker echoing it would fail.
    exc = parse_error(b"SEND\ndestination:/a\rb\n\n\x00", version)
    assert "CR not followed by LF" in exc.message


def test_crlf_split_across_chunks() -> None:
    parser = FrameParser()
    assert parser.feed(b"SEND\r") == []
    assert parser.feed(b"\ndestination:/q\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\n\x00\r") == [Frame("SEND", (("destination", "/q"),))]
    assert parser.feed(b"\n") == [HB]


# -- #6, #7, #8: EOLs and NULs between frames -----------------------------------


def test_eols_between_frames_are_heartbeats() -> None:
    data = b"DISCONNECT\n\n\x00\n\r\n\nDISCONNECT\n\n\x00"
    assert parse(data) == [Frame("DISCONNECT"), HB, HB, HB, Frame("DISCONNECT")]


def test_leading_eols_and_nuls_are_skipped() -> None:
    assert parse(b"\x00\n\nCONNECT\n\n\x00") == [HB, HB, Frame("CONNECT")]


def test_nuls_right_before_a_frame() -> None:
    assert parse(b"DISCONNECT\n\n\x00\x00\x00DISCONNECT\n\n\x00") == [
        Frame("DISCONNECT"),
        Frame("DISCONNECT"),
    ]


def test_coalesced_heartbeats_before_a_frame_do_not_lose_it() -> None:
    # stomp.py drops the frame here (peers.md).
    data = b"\n\n\n" + b"MESSAGE\ndestination:/q\nmessage-id:1\nsubscription:0\n\nx\x00"
    assert parse(data)[-1] == Frame(
        "MESSAGE", (("destination", "/q"), ("message-id", "1"), ("subscription", "0")), b"x"
    )


def test_cr_between_frames_must_be_followed_by_lf() -> None:
    exc = parse_error(b"DISCONNECT\n\n\x00\rX")
    assert "CR not followed by LF between frames" in exc.message


def test_lone_cr_at_eof_is_an_incomplete_frame() -> None:
    exc = parse_error(b"DISCONNECT\n\n\x00\r")
    assert "ended in the middle of a frame" in exc.message


# -- #11, #12, #13, #14: header lines --------------------------------------------


def test_split_at_first_colon() -> None:
    (frame,) = frames(b"CONNECT\npasscode:a:b\n\n\x00")
    assert frame.get("passcode") == "a:b"


def test_empty_value() -> None:
    (frame,) = frames(b"SEND\nfoo:\ndestination:/q\n\n\x00")
    assert frame.get("foo") == ""


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_line_without_colon(version: str) -> None:
    exc = parse_error(b"SEND\nfoo\n\n\x00", version)
    assert "'foo'" in exc.message
    assert "no ':'" in exc.message


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_empty_header_name(version: str) -> None:
    exc = parse_error(b"SEND\n:v\n\n\x00", version)
    assert "empty name" in exc.message


def test_bad_line_in_escaped_frame() -> None:
    exc = parse_error(b"SEND\na\\\\b:c\nfoo\n\n\x00")
    assert "no ':'" in exc.message


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_values_are_never_trimmed(version: str) -> None:
    (frame,) = frames(b"SEND\nfoo: bar \n\n\x00", version)
    assert frame.get("foo") == " bar "


def test_the_parser_never_trims() -> None:
    # 1.0 left-trimming is a session policy, applied by the connections.
    (frame,) = frames(b"SEND\ndestination: /q \n\n\x00", "1.0")
    assert frame.get("destination") == " /q "


# -- #16: repeated headers ---------------------------------------------------------


def test_repeated_headers_first_wins_and_all_are_kept() -> None:
    (frame,) = frames(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\x00")
    assert frame.get("foo") == "World"
    assert frame.get_all("foo") == ["World", "Hello"]
    assert frame.headers == (("foo", "World"), ("foo", "Hello"))


def test_get_default() -> None:
    assert Frame("SEND").get("x", "d") == "d"


# -- #17: UTF-8 -----------------------------------------------------------------------


def test_utf8_headers() -> None:
    (frame,) = frames("SEND\ndestination:/q/é€😀\n\n\x00".encode())
    assert frame.get("destination") == "/q/é€😀"


def test_invalid_utf8_is_an_error_naming_the_byte() -> None:
    exc = parse_error(b"SEND\ndestination:\xff\n\n\x00")
    assert "invalid UTF-8" in exc.message
    assert "at byte 17" in exc.message


def test_utf8_split_across_chunks() -> None:
    data = "SEND\ndestination:€\n\n\x00".encode()
    assert parse(data) == [Frame("SEND", (("destination", "€"),))]


# -- #18-#21, #25: escaping per version ------------------------------------------------


def test_1_2_escapes() -> None:
    (frame,) = frames(b"MESSAGE\na\\cb:c\\nd\\\\e\\rf\n\n\x00", "1.2")
    assert frame.headers == (("a:b", "c\nd\\e\rf"),)


def test_1_1_escapes() -> None:
    (frame,) = frames(b"MESSAGE\na\\cb:c\\nd\\\\e\n\n\x00", "1.1")
    assert frame.headers == (("a:b", "c\nd\\e"),)


def test_backslash_r_is_undefined_in_1_1() -> None:
    exc = parse_error(b"MESSAGE\nx:a\\rb\n\n\x00", "1.1")
    assert "undefined escape" in exc.message
    assert "'\\\\r'" in exc.message


@pytest.mark.parametrize(
    "value", [b"/a\\tb", b"/a\\", b"\\x", b"a\\\\\\"], ids=["tab", "trailing", "x", "odd"]
)
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_undefined_escapes_are_fatal(value: bytes, version: str) -> None:
    exc = parse_error(b"SEND\ndestination:" + value + b"\n\n\x00", version)
    assert "undefined escape" in exc.message
    assert "SEND header 'destination'" in exc.message


def test_undefined_escape_in_a_name() -> None:
    exc = parse_error(b"SEND\nde\\st:x\n\n\x00")
    assert "undefined escape" in exc.message


@pytest.mark.parametrize("command", [b"CONNECT", b"STOMP", b"CONNECTED"])
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_connect_frames_are_not_unescaped(command: bytes, version: str) -> None:
    (frame,) = frames(command + b"\npasscode:p\\t\\c\n\n\x00", version)
    assert frame.get("passcode") == "p\\t\\c"


def test_no_escapes_in_1_0() -> None:
    (frame,) = frames(b"SEND\nh:x\\cy\\t\n\n\x00", "1.0")
    assert frame.get("h") == "x\\cy\\t"


def test_escaped_backslash_followed_by_letters() -> None:
    # stompjs mis-decodes wire "\\n" (an escaped backslash, then n) as backslash + LF.
    (frame,) = frames(b"MESSAGE\nk:\\\\n\\\\\n\n\x00")
    assert frame.get("k") == "\\n\\"


# -- #26-#29, #32, #33: bodies and content-length -------------------------------------------


def test_content_length_body_with_nuls() -> None:
    (frame,) = frames(b"SEND\ncontent-length:3\n\na\x00b\x00")
    assert frame.body == b"a\x00b"


def test_content_length_must_be_followed_by_nul() -> None:
    exc = parse_error(b"SEND\ncontent-length:2\nreceipt:r9\n\nabc\x00")
    assert "not NUL" in exc.message
    assert "b'c'" in exc.message
    assert exc.receipt_id == "r9"


def test_body_without_content_length_ends_at_first_nul() -> None:
    exc = parse_error(b"SEND\ndestination:/q\n\nab\x00cd\n\n\x00")
    parser = FrameParser()
    assert parser.feed(b"SEND\ndestination:/q\n\nab\x00")[0].body == b"ab"  # type: ignore[union-attr]
    assert "unknown command 'cd'" in exc.message


def test_first_content_length_wins() -> None:
    (frame,) = frames(b"SEND\ncontent-length:1\ncontent-length:5\n\na\x00")
    assert frame.body == b"a"


def test_content_length_with_crlf() -> None:
    (frame,) = frames(b"SEND\r\ncontent-length:2\r\n\r\nab\x00")
    assert frame.body == b"ab"


def test_content_length_as_last_header_without_other_lines() -> None:
    (frame,) = frames(b"SEND\ncontent-length:0\n\n\x00")
    assert frame.body == b""


@pytest.mark.parametrize("value", [b"abc", b"-1", b"+3", b" 3", b"3 ", b"", b"\xc2\xb2", b"0x1"])
def test_bad_content_length(value: bytes) -> None:
    exc = parse_error(b"SEND\nreceipt:r1\ncontent-length:" + value + b"\n\n\x00")
    assert "content-length" in exc.message
    assert "not a decimal integer" in exc.message
    assert exc.receipt_id == "r1"


def test_content_length_over_the_limit_is_refused_before_the_body_arrives() -> None:
    parser = FrameParser(max_body_size=100)
    with pytest.raises(RemoteProtocolError, match="exceeds the 100-byte body limit"):
        parser.feed(b"SEND\ncontent-length:101\n\n")


def test_huge_content_length() -> None:
    exc = parse_error(b"SEND\ncontent-length:" + b"9" * 5000 + b"\n\n\x00")
    assert "exceeds" in exc.message


def test_content_length_zero_on_ack() -> None:
    (frame,) = frames(b"ACK\nid:1\ncontent-length:0\n\n\x00")
    assert frame == Frame("ACK", (("id", "1"), ("content-length", "0")))


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_body_on_a_non_body_frame(version: str) -> None:
    exc = parse_error(b"SUBSCRIBE\ndestination:/q\nreceipt:r\n\nxyz\x00", version)
    assert "SUBSCRIBE frame cannot have a body" in exc.message
    assert exc.receipt_id == "r"


def test_content_length_on_a_non_body_frame() -> None:
    exc = parse_error(b"ACK\nid:1\ncontent-length:3\n\nxyz\x00")
    assert "ACK frame cannot have a body" in exc.message


def test_1_0_allows_a_body_on_any_frame() -> None:
    (frame,) = frames(b"SUBSCRIBE\ndestination:/q\n\nxyz\x00", "1.0")
    assert frame.body == b"xyz"


def test_body_limit_without_content_length() -> None:
    parser = FrameParser(max_body_size=10)
    parser.feed(b"SEND\nreceipt:r\n\n0123456789")
    with pytest.raises(RemoteProtocolError, match="exceeds the 10-byte limit") as info:
        parser.feed(b"X")
    assert info.value.receipt_id == "r"


def test_body_limit_when_nul_arrives_with_the_overflow() -> None:
    exc = parse_error(b"SEND\n\n" + b"x" * 11 + b"\x00", max_body_size=10)
    assert "SEND body exceeds the 10-byte limit" in exc.message


def test_large_body_in_small_chunks() -> None:
    body = bytes(range(256)) * 512
    data = b"MESSAGE\ncontent-length:%d\n\n" % len(body) + body + b"\x00"
    parser = FrameParser()
    out = []
    for i in range(0, len(data), 7):
        out += parser.feed(data[i : i + 7])
    assert out == [Frame("MESSAGE", (("content-length", str(len(body))),), body)]


def test_large_bodies_whole_and_bytewise() -> None:
    body = bytes(range(256)) * 20
    with_length = b"SEND\ncontent-length:%d\n\n" % len(body) + body + b"\x00"
    assert frames(with_length)[0].body == body
    text = b"x" * 5000
    assert frames(b"SEND\n\n" + text + b"\x00")[0].body == text


def test_body_limit_seen_with_the_headers() -> None:
    exc = parse_error(b"SEND\nreceipt:q\n\n" + b"x" * 20, max_body_size=10)
    assert "SEND body exceeds the 10-byte limit" in exc.message
    assert exc.receipt_id == "q"


def test_frames_before_an_error_are_returned_first() -> None:
    parser = FrameParser()
    good = b"SEND\ndestination:/q\n\n\x00"
    assert parser.feed(good + b"\n" + good + b"FOO\n\n\x00") == [
        Frame("SEND", (("destination", "/q"),)),
        HB,
        Frame("SEND", (("destination", "/q"),)),
    ]
    with pytest.raises(RemoteProtocolError, match="unknown command 'FOO'"):
        parser.feed(b"")


def test_nul_body_scan_resumes() -> None:
    parser = FrameParser()
    assert parser.feed(b"SEND\n\nabc") == []
    assert parser.feed(b"def") == []
    assert parser.feed(b"g\x00") == [Frame("SEND", (), b"abcdefg")]


# -- #35: header limits, checked while the frame is incomplete ------------------------------------


def test_header_block_limit_on_a_never_ending_line() -> None:
    parser = FrameParser(max_header_size=1024)
    parser.feed(b"SEND\nx:")
    with pytest.raises(RemoteProtocolError, match="header block exceeds the 1024-byte limit"):
        for _ in range(100):
            parser.feed(b"a" * 100)


def test_default_header_limit_fails_long_before_a_megabyte() -> None:
    parser = FrameParser()
    parser.feed(b"SEND\nx:")  # a valid command line, then a never-ending header
    with pytest.raises(RemoteProtocolError, match="header block exceeds"):
        for _ in range(1000):
            parser.feed(b"a" * 1000)
    assert parser.buffered < 100_000


def test_header_block_limit_when_complete() -> None:
    exc = parse_error(b"SEND\nx:" + b"a" * 100 + b"\n\n\x00", max_header_size=50)
    assert "header block exceeds the 50-byte limit" in exc.message


# Issue 9 item 18 (found by fuzz/fuzz_parser.py): the limit counts the same bytes
# however the frame is chunked. The block is the command and header lines without
# the last line's EOL, so a 256-byte block passes max_header_size=256 in LF and in
# CR LF frames, fed whole or one byte at a time, and a 257-byte block fails.


def test_header_block_limit_does_not_depend_on_chunking() -> None:
    data = b"SEND\ndestination:/q/a\nx:" + b"y" * 232 + b"\n\n\x00"
    (frame,) = frames_with(data, max_header_size=256)
    assert frame.get("x") == "y" * 232
    exc = parse_error(data.replace(b"x:", b"x:y"), max_header_size=256)
    assert "header block exceeds the 256-byte limit" in exc.message


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
@pytest.mark.parametrize("size", [253, 254, 255, 256, 257, 258])
def test_header_block_limit_counts_the_same_bytes_for_lf_and_crlf(eol: bytes, size: int) -> None:
    lines = [b"SEND", b"destination:/q/a"]
    fill = size - sum(map(len, lines)) - len(eol) * len(lines) - 2
    block = eol.join([*lines, b"x:" + b"y" * fill])
    assert len(block) == size
    data = block + eol + eol + b"\x00"
    if size <= 256:
        assert len(frames_with(data, max_header_size=256)) == 1
    else:
        exc = parse_error(data, max_header_size=256)
        assert exc.message == "header block exceeds the 256-byte limit (at byte 0)"


def frames_with(data: bytes, **limits: int) -> list[Frame]:
    return [f for f in parse(data, **limits) if isinstance(f, Frame)]


def test_header_count_limit() -> None:
    ok = b"SEND\n" + b"h:v\n" * 3 + b"\n\x00"
    assert frames(ok)
    exc = parse_error(b"SEND\n" + b"h:v\n" * 4 + b"\n\x00", max_headers=3)
    assert "more than 3 headers" in exc.message
    assert parse(ok, max_headers=3)


# -- EOF and errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"SEND", b"SEND\n\n", b"SEND\ncontent-length:5\n\nab", b"SEND\n\nab"]
)
def test_eof_inside_a_frame(data: bytes) -> None:
    exc = parse_error(data)
    assert "ended in the middle of a frame" in exc.message


@pytest.mark.parametrize(
    "data",
    [b"SEND", b"SEND\n\n", b"SEND\ncontent-length:5\n\nab", b"SEND\n\nab", b"DISCONNECT\n\n\x00\r"],
)
def test_eof_received_before_the_first_call(data: bytes) -> None:
    # The same errors when EOF is already buffered as the frame is first looked at.
    parser = FrameParser()
    parser.receive_data(data)
    parser.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="ended in the middle of a frame"):
        while parser.next_frame() is not None:
            pass


def test_clean_eof() -> None:
    parser = FrameParser()
    assert parser.feed(b"DISCONNECT\n\n\x00\n") == [Frame("DISCONNECT"), HB]
    assert not parser.at_eof
    assert parser.feed(b"") == []
    assert parser.at_eof


def test_data_after_eof_is_a_local_error() -> None:
    parser = FrameParser()
    parser.feed(b"")
    with pytest.raises(LocalProtocolError, match="after EOF"):
        parser.feed(b"x")


def test_errors_are_sticky() -> None:
    parser = FrameParser()
    with pytest.raises(RemoteProtocolError) as first:
        parser.feed(b"FOO\n\n\x00")
    with pytest.raises(RemoteProtocolError) as again:
        parser.next_frame()
    assert again.value is first.value


def test_version_switch_and_validation() -> None:
    parser = FrameParser("1.0")
    assert parser.feed(b"SEND\nh:\\c\n\n\x00")[0] == Frame("SEND", (("h", "\\c"),))
    parser.version = "1.2"
    assert parser.version == "1.2"
    assert parser.feed(b"SEND\nh:\\c\n\n\x00")[0] == Frame("SEND", (("h", ":"),))
    with pytest.raises(LocalProtocolError, match="unsupported STOMP version '2.0'"):
        parser.version = "2.0"


def test_text_helper() -> None:
    assert Frame("MESSAGE", (), "é".encode()).text() == "é"
    utf16 = Frame("MESSAGE", (("content-type", "text/plain;charset=utf-16"),), "é".encode("utf-16"))
    assert utf16.text() == "é"
    plain = Frame("MESSAGE", (("content-type", "text/plain"),), b"abc")
    assert plain.text() == "abc"


def test_whole_feed_returns_everything() -> None:
    assert parse_whole(b"\n") == [HB]
