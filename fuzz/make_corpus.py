"""Write the seed corpus in ``fuzz/corpus/`` (``python fuzz/make_corpus.py``).

Every seed is one configuration byte (see the harness docstrings: the low
bits pick the version and, for ``fuzz_connection.py``, the role) followed by
realistic STOMP bytes. The same seeds serve both harnesses.
"""

from __future__ import annotations

from pathlib import Path

V10, V11, V12 = 0, 2, 4  # bits 1-2 of the configuration byte


def _conn(version: int, *, client: bool, beats: bool = False) -> int:
    """The fuzz_connection.py configuration byte for a scenario."""
    return int(client) | version | (8 if beats else 0)


SEEDS: dict[str, tuple[int, bytes]] = {
    # CONNECT as a 1.2 client writes it (parser seed; a server sees a second CONNECT).
    "connect-12": (
        V12,
        b"CONNECT\naccept-version:1.2\nhost:example.org\nlogin:guest\npasscode:a:b\\c\n"
        b"heart-beat:10000,10000\n\n\0",
    ),
    # The CONNECT @stomp/stompjs sends over WebSocket: no host, versions highest
    # first, CRLF-free, padded with a trailing LF.
    "connect-stompjs": (
        V12,
        b"CONNECT\naccept-version:1.2,1.1,1.0\nheart-beat:10000,10000\n\n\0\n",
    ),
    # A 1.0 STOMP frame with padded values (left-trimmed in 1.0).
    "stomp-10-padded": (V10, b"STOMP\nlogin: guest\npasscode: guest\n\n\0"),
    # Client traffic in a 1.2 session (server role).
    "client-session-12": (
        _conn(V12, client=False),
        b"SUBSCRIBE\nid:sub-0\ndestination:/queue/a\nack:client-individual\nreceipt:r-9\n\n\0"
        b"SEND\ndestination:/queue/a\ncontent-type:text/plain\ncontent-length:5\n\nhello\0"
        b"ACK\nid:a1\n\n\0"
        b"BEGIN\ntransaction:tx\n\n\0SEND\ndestination:/queue/a\ntransaction:tx\n\nx\0"
        b"COMMIT\ntransaction:tx\n\n\0"
        b"UNSUBSCRIBE\nid:sub-0\n\n\0DISCONNECT\nreceipt:bye\n\n\0",
    ),
    # Client traffic in a 1.1 session: ACK by message-id + subscription, NACK.
    "client-session-11": (
        _conn(V11, client=False),
        b"SUBSCRIBE\nid:0\ndestination:/topic/x\nack:client\n\n\0"
        b"NACK\nmessage-id:m1\nsubscription:0\n\n\0\n\n",
    ),
    # Client traffic in a 1.0 session: SUBSCRIBE without id, ACK by message-id.
    "client-session-10": (
        _conn(V10, client=False),
        b"SUBSCRIBE\ndestination: /queue/a\nack: client\n\n\0ACK\nmessage-id: m1\n\n\0",
    ),
    # MESSAGE with escaped headers (1.2 escapes \r \n \c \\).
    "message-escapes-12": (
        _conn(V12, client=True),
        b"MESSAGE\ndestination:/queue/1\nmessage-id:m\\c1\nsubscription:1\nack:a\\\\1\n"
        b"note:line\\none\\r\\ctwo\n\nbody\0",
    ),
    # A binary body with NULs inside, framed by content-length.
    "message-binary": (
        _conn(V12, client=True),
        b"MESSAGE\ndestination:/queue/0\nmessage-id:m2\nsubscription:0\n"
        b"content-type:application/octet-stream\ncontent-length:6\n\n\0\1\0\2\0\3\0",
    ),
    # CRLF line endings throughout (1.2), then a CRLF heart-beat.
    "crlf-frames-12": (
        _conn(V12, client=True),
        b"RECEIPT\r\nreceipt-id:r0\r\n\r\n\0\r\n"
        b"MESSAGE\r\ndestination:/queue/2\r\nmessage-id:m3\r\nsubscription:2\r\n"
        b"ack:x3\r\n\r\nhi\0",
    ),
    # Heart-beats: bare EOLs and stray NULs between frames, in a heart-beating session.
    "heart-beats": (
        _conn(V11, client=True, beats=True),
        b"\n\n\r\n\0\0\nRECEIPT\nreceipt-id:r1\n\n\0\n\n",
    ),
    # ERROR from the server, body counted by content-length.
    "error": (
        _conn(V12, client=True),
        b"ERROR\nmessage:malformed frame received\nreceipt-id:s0\ncontent-type:text/plain\n"
        b"content-length:18\n\nno such queue: /x\n\0",
    ),
    # Repeated headers: the first one wins.
    "repeated-headers": (
        _conn(V12, client=True),
        b"MESSAGE\ndestination:/queue/0\ndestination:/queue/other\nmessage-id:m4\n"
        b"subscription:0\nsubscription:9\n\n\0",
    ),
    # A 1.0 session's RECEIPT and MESSAGE without subscription.
    "server-session-10": (
        _conn(V10, client=True),
        b"RECEIPT\nreceipt-id: r0\n\n\0"
        b"MESSAGE\ndestination:/queue/0\nmessage-id:m5\nsubscription:1\n\nplain\0",
    ),
    # Issue 9 item 18: a 256-byte header block under the small limits (bit 4),
    # accepted whole but refused one byte at a time, in LF and CR LF frames.
    "regression-header-limit-lf": (
        V12 | 16,
        b"SEND\ndestination:/q/a\nx:" + b"y" * 232 + b"\n\n\0",
    ),
    "regression-header-limit-crlf": (
        V12 | 16,
        b"SEND\r\ndestination:/q/a\r\nx:" + b"y" * 229 + b"\r\n\r\n\0",
    ),
    # Issue 9 item 19: a 1.0 server input with two SUBSCRIBEs without id; the
    # harness's MESSAGE must name an active subscription (found after ~19,000 runs).
    "regression-two-1.0-subscribes-without-id": (
        _conn(V10, client=False),
        b"SUBSCRIBE\ndestination: /qu\x0b\n\n\x00SUBSCRIBE\ndestination:1.0 /qu\x0b\n\n"
        b"\r\x00\x00\x00\x00\nR\x00\n\n: ",
    ),
}


def main() -> None:
    corpus = Path(__file__).resolve().parent / "corpus"
    corpus.mkdir(exist_ok=True)
    for name, (config, data) in SEEDS.items():
        (corpus / name).write_bytes(bytes([config]) + data)
    print(f"wrote {len(SEEDS)} seeds to {corpus}")


if __name__ == "__main__":
    main()
