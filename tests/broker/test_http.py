"""Plain HTTP GETs on a WebSocket listener: the page and the WebSocket share one port."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from stomp_proto.asyncio import connect
from stomp_proto.broker import Broker

pytestmark = pytest.mark.anyio


def pages(target: str) -> tuple[int, Sequence[tuple[str, str]], bytes] | None:
    if target == "/":
        return 200, [("content-type", "text/html")], b"<h1>portfolio</h1>"
    if target == "/boom":
        raise RuntimeError("handler bug")
    return None


async def get(port: int, request: bytes) -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request)
        data = b""
        with anyio.fail_after(5):
            while True:
                try:
                    data += await stream.receive()
                except anyio.EndOfStream:
                    return data


async def test_http_and_websocket_on_one_port(anyio_backend: str) -> None:
    broker = Broker(tcp=[], ws=[("127.0.0.1", 0, "/portfolio")], heart_beat=(0, 0), http=pages)
    async with broker:
        port = broker.addresses[0][2]
        page = await get(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert page.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"content-length: 18\r\n" in page and page.endswith(b"<h1>portfolio</h1>")
        head = await get(port, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n")
        missing = await get(port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        assert missing.startswith(b"HTTP/1.1 404 Not Found")
        failing = await get(port, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        assert failing.startswith(b"HTTP/1.1 500")
        async with connect(f"ws://127.0.0.1:{port}/portfolio", heart_beat=(0, 0)) as client:
            sub = await client.subscribe("/topic/t")
            await client.send("/topic/t", "over the same port")
            with anyio.fail_after(5):
                assert (await sub.get()).text() == "over the same port"


async def test_without_a_handler_plain_gets_are_refused(anyio_backend: str) -> None:
    broker = Broker(tcp=[], ws=[("127.0.0.1", 0, "/ws")], heart_beat=(0, 0))
    async with broker:
        answer = await get(broker.addresses[0][2], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400")
