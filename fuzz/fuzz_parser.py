"""Fuzz the incremental FrameParser: whole input and one byte at a time must agree.

The first input byte picks the parser's configuration:

* bits 1-2: the STOMP version (``1.0``, ``1.1``, ``1.2``; 3 also means ``1.2``);
* bit 4: small limits (256-byte header block, 8 headers, 512-byte body) instead
  of the defaults, so that the limit checks are reached quickly.

The bits mean the same in ``fuzz_connection.py``, so one seed corpus serves both.

The rest is fed to two parsers: once in a single ``receive_data`` call and once
one byte per call, each followed by EOF. Both must return the same frames and
heart-beats, and either both finish cleanly or both raise
:class:`stomp_proto.RemoteProtocolError` after the same frames. Any other
exception escaping the parser is a bug.

Run with ``python fuzz/fuzz_parser.py fuzz/corpus -max_total_time=60``; import
the module to call :func:`check` directly (atheris is imported only when the
file runs as a script).
"""

from __future__ import annotations

import sys

from stomp_proto import SUPPORTED_VERSIONS, Frame, FrameParser, Heartbeat, RemoteProtocolError

Parsed = Frame | Heartbeat
_SMALL = {"max_header_size": 256, "max_headers": 8, "max_body_size": 512}


def _make_parser(config: int) -> FrameParser:
    version = SUPPORTED_VERSIONS[min((config >> 1) & 3, 2)]
    if config & 16:
        return FrameParser(version, **_SMALL)
    return FrameParser(version)


def _drain(parser: FrameParser, out: list[Parsed]) -> None:
    while (item := parser.next_frame()) is not None:
        out.append(item)


def _run(config: int, chunks: list[bytes]) -> tuple[list[Parsed], str | None]:
    """Parse ``chunks`` then EOF; return what was parsed and the error, if any."""
    parser = _make_parser(config)
    out: list[Parsed] = []
    try:
        for chunk in chunks:
            parser.receive_data(chunk)
            _drain(parser, out)
        parser.receive_data(b"")
        _drain(parser, out)
    except RemoteProtocolError as exc:
        # The parser must keep failing with the same error.
        try:
            parser.next_frame()
        except RemoteProtocolError as again:
            assert again is exc, "the parser raised a different error the second time"
        else:
            raise AssertionError("the parser recovered after a RemoteProtocolError") from None
        return out, exc.message
    assert parser.at_eof, "EOF was accepted but the parser is not at_eof"
    assert parser.buffered == 0, "EOF was accepted with bytes still buffered"
    return out, None


def check(data: bytes) -> None:
    """Run one fuzz input; raise AssertionError (or whatever escaped) on a bug."""
    if not data:
        return
    config, payload = data[0], data[1:]
    whole, whole_error = _run(config, [payload] if payload else [])
    trickle, trickle_error = _run(config, [payload[i : i + 1] for i in range(len(payload))])
    assert whole == trickle, f"whole gave {whole!r}, byte-by-byte gave {trickle!r}"
    assert (whole_error is None) == (trickle_error is None), (
        f"whole error {whole_error!r} vs byte-by-byte error {trickle_error!r}"
    )
    for item in whole:
        assert isinstance(item, (Frame, Heartbeat)), item
        if isinstance(item, Frame):
            assert isinstance(item.body, bytes)
            assert all(isinstance(n, str) and isinstance(v, str) for n, v in item.headers)


def main() -> None:
    import atheris  # type: ignore[import-untyped]

    atheris.instrument_all()
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
