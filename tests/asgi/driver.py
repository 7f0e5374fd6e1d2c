"""A hand-written ASGI server for one WebSocket: what the endpoint sees under uvicorn.

:class:`FakeWebSocket` plays the server's side of the ASGI WebSocket
protocol in memory: it hands the application ``websocket.connect`` and the
client's messages, and records what the application sends, in order. Its
``send`` can be held (:meth:`FakeWebSocket.hold`), as a server's is while the
client's socket is full, to test back-pressure. The STOMP side is a sans-IO
:class:`~stomp_proto.ClientConnection`: :meth:`FakeWebSocket.stomp` sends
events, :meth:`FakeWebSocket.event` reads them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc

from stomp_proto import NEED_DATA, ClientConnection, Connect, Event

Message = dict[str, Any]
App = Callable[[Any, Any, Any], Awaitable[None]]


class FakeWebSocket:
    """One WebSocket connection to ``app``, as an ASGI server presents it."""

    def __init__(
        self,
        *,
        subprotocols: Sequence[str] = ("v10.stomp", "v11.stomp", "v12.stomp"),
        headers: Sequence[tuple[bytes, bytes]] = (),
        http_response: bool = True,
        path: str = "/portfolio",
    ) -> None:
        self.scope: Message = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "scheme": "ws",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "subprotocols": list(subprotocols),
            "extensions": {"websocket.http.response": {}} if http_response else {},
        }
        self._to_app, self._app_inbox = anyio.create_memory_object_stream[Message](1000)
        self._from_app, self._outbox = anyio.create_memory_object_stream[Message](10_000)
        #: Every message the application sent, in order.
        self.sent: list[Message] = []
        #: How many ``send`` calls the application has made that have not returned.
        self.in_flight = 0
        self.most_in_flight = 0
        self._open = anyio.Event()
        self._open.set()
        self.client = ClientConnection()
        self.finished = anyio.Event()  # the application returned
        #: Raised by ``websocket.send`` once set (the client went away).
        self.broken: Exception | None = None

    # -- the server's side, as the application sees it --------------------------------

    async def receive(self) -> Message:
        return await self._app_inbox.receive()

    async def send(self, message: Message) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if message["type"] == "websocket.send":
                await self._open.wait()  # the client's socket is full
                if self.broken is not None:
                    raise self.broken
            self.sent.append(message)
            await self._from_app.send(message)
        finally:
            self.in_flight -= 1

    # -- the test's side -----------------------------------------------------------------

    def hold(self) -> None:
        """From now on, ``websocket.send`` blocks (the client does not read)."""
        self._open = anyio.Event()

    def release(self) -> None:
        self._open.set()

    async def put(self, message: Message) -> None:
        await self._to_app.send(message)

    async def next(self, timeout: float = 5.0) -> Message:
        """The next message the application sent."""
        with anyio.fail_after(timeout):
            return await self._outbox.receive()

    async def handshake(self) -> Message:
        """``websocket.connect``; the application's answer (accept, close or an HTTP response)."""
        await self.put({"type": "websocket.connect"})
        return await self.next()

    async def send_text(self, text: str) -> None:
        await self.put({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self.put({"type": "websocket.receive", "bytes": data})

    async def disconnect(self, code: int = 1000) -> None:
        await self.put({"type": "websocket.disconnect", "code": code})

    async def stomp(self, event: Event, *, binary: bool = False) -> None:
        """Send ``event`` as one WebSocket message (text unless ``binary``)."""
        data = self.client.send(event)
        if binary:
            await self.send_bytes(data)
        else:
            await self.send_text(data.decode())

    async def event(self, timeout: float = 5.0) -> Event:
        """The next STOMP event from the application (fails on anything else)."""
        while True:
            event = self.client.next_event()
            if event is not NEED_DATA:
                assert isinstance(event, Event), event
                return event
            message = await self.next(timeout)
            assert message["type"] == "websocket.send", message
            data = message.get("bytes")
            if data is None:
                data = message["text"].encode()
            self.client.receive_data(data)

    async def connect(self, **options: Any) -> Event:
        """Accept, then CONNECT; the CONNECTED (or ERROR) event."""
        accepted = await self.handshake()
        assert accepted["type"] == "websocket.accept", accepted
        options.setdefault("accept_version", ("1.2",))
        options.setdefault("host", "testserver")
        await self.stomp(Connect(**options))
        return await self.event()


@asynccontextmanager
async def websocket(app: App, **options: Any) -> AsyncIterator[FakeWebSocket]:
    """A :class:`FakeWebSocket` with ``app`` running on it, until the block ends
    (then the client disconnects, if the application has not returned)."""
    ws = FakeWebSocket(**options)

    async def run() -> None:
        try:
            await app(ws.scope, ws.receive, ws.send)
        finally:
            ws.finished.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        try:
            yield ws
        finally:
            if not ws.finished.is_set():
                ws.release()
                await ws.disconnect(1001)
                with anyio.move_on_after(5):
                    await ws.finished.wait()
                tg.cancel_scope.cancel()


async def http_get(app: App, path: str = "/", method: str = "GET", body: bytes = b"") -> Message:
    """One HTTP request to ``app``; ``{"status", "headers", "body"}``."""
    scope: Message = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    requests = [{"type": "http.request", "body": body, "more_body": False}]
    response: Message = {"body": b""}

    async def receive() -> Message:
        if requests:
            return requests.pop()
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            response["status"] = message["status"]
            response["headers"] = {
                bytes(k).decode().lower(): bytes(v).decode() for k, v in message["headers"]
            }
        else:
            assert message["type"] == "http.response.body"
            response["body"] += message.get("body", b"")

    with anyio.fail_after(5):
        await app(scope, receive, send)
    return response


class Lifespan:
    """The server's side of the ASGI lifespan protocol for ``app``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._to_app, self._inbox = anyio.create_memory_object_stream[Message](10)
        self._from_app, self._outbox = anyio.create_memory_object_stream[Message](10)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        await self.app(scope, self._inbox.receive, self._from_app.send)

    async def startup(self) -> Message:
        await self._to_app.send({"type": "lifespan.startup"})
        with anyio.fail_after(10):
            return await self._outbox.receive()

    async def shutdown(self) -> Message:
        await self._to_app.send({"type": "lifespan.shutdown"})
        with anyio.fail_after(10):
            return await self._outbox.receive()
