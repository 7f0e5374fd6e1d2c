"""The application object: Spring's STOMP programming model, in Python.

A :class:`StompApp` holds handlers and configuration; :meth:`StompApp.broker`
builds the :class:`~stomp_proto.broker.Broker` that serves it (over TCP and
WebSocket, with every broker option), and ``stomp-proto run MODULE:ATTR``
does the same from the command line.

============================================  ==========================================
Spring                                        stomp-proto
============================================  ==========================================
``@MessageMapping("/trade")``                 ``@app.message("/trade")``
``@SendTo("/topic/x")``                       ``@app.message(..., send_to="/topic/x")``
``@SendToUser("/queue/x")``                   ``@app.message(..., send_to_user="/queue/x")``
``@SendToUser(broadcast = false)``            ``send_to_user=..., broadcast=False``
``@SubscribeMapping("/positions")``           ``@app.subscribe("/positions")``
``@MessageExceptionHandler``                  ``@app.exception_handler(ValueError)``
``SimpMessagingTemplate.convertAndSend``      ``app.send(destination, payload)``
``convertAndSendToUser``                      ``app.send_to_user(user, destination, payload)``
``ChannelInterceptor`` (in / out)             ``@app.interceptor`` / ``@app.outbound``
``simpDestMatchers(...).authenticated()``     ``app.allow("SEND", "/app/**", when=...)``
============================================  ==========================================

Handlers take one argument, an :class:`AppMessage` (body as bytes, text or
JSON, headers, destination, path variables, session id, user, principal),
may be plain functions (run in a worker thread, as FastAPI runs sync
endpoints) or coroutines, and return what to send: None sends nothing,
``bytes`` go as they are, ``str`` as UTF-8 text, anything else as JSON.
A session's SENDs are handled one at a time, in order, and a SEND's RECEIPT
goes out once its handler has finished and its reply has been routed.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import anyio
import anyio.to_thread

from .. import Connect, Event, Receipt, Send
from ..broker import (
    Broker,
    Entry,
    Post,
    QueueRoute,
    Route,
    Router,
    Session,
    Subscription,
    TopicRoute,
    compile_pattern,
)
from ._routes import AppRoute, PathTemplate, UserRoute

__all__ = ["AppMessage", "StompApp"]

log = logging.getLogger("stomp_proto.app")

F = TypeVar("F", bound=Callable[..., Any])
Command = Literal["SEND", "SUBSCRIBE", "*"]
Handler = Callable[["AppMessage"], Any]
ErrorHandler = Callable[[BaseException, "AppMessage"], Any]


@dataclass(frozen=True, slots=True)
class AppMessage:
    """What a handler gets: one SEND (or SUBSCRIBE) to an application destination."""

    #: The full destination (``/app/trade/MMM``).
    destination: str
    #: The destination under the application prefix (``/trade/MMM``).
    path: str
    #: The handler path's ``{name}`` variables (``{"ticker": "MMM"}``).
    variables: Mapping[str, str]
    body: bytes
    content_type: str | None
    headers: tuple[tuple[str, str], ...]
    #: The broker's id for the sending session.
    session_id: str
    #: The login the session authenticated with (None when anonymous).
    user: str | None
    #: What the authenticator returned for the session.
    principal: object
    #: The SUBSCRIBE's id, for a subscription handler.
    subscription: str | None = None

    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body decoded as JSON (ValueError when it is not)."""
        return json.loads(self.body)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name``, or ``default``."""
        for key, value in self.headers:
            if key == name:
                return value
        return default


@dataclass(eq=False, slots=True)
class _Mapping:
    template: PathTemplate
    handler: Handler
    send_to: str | None = None
    send_to_user: str | None = None
    broadcast: bool = True
    #: The handler's full destination pattern, its name in the metrics.
    name: str = ""


@dataclass(eq=False, slots=True)
class _Rule:
    commands: frozenset[str]
    pattern: str
    allow: bool
    when: Callable[[Session], bool] | None
    matcher: Callable[[str], bool]


@dataclass(eq=False, slots=True)
class _Worker:
    """The SENDs of one session waiting for their handlers, in order."""

    queue: deque[tuple[_Mapping, Session, Send, str]] = field(default_factory=deque)
    running: bool = False


def encode(payload: object, content_type: str | None = None) -> tuple[bytes, str | None]:
    """A handler's return value (or a payload to send) as a body and content type."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload), content_type
    if isinstance(payload, str):
        return payload.encode(), content_type or "text/plain;charset=utf-8"
    return json.dumps(payload, separators=(",", ":")).encode(), content_type or "application/json"


class StompApp:
    """Handlers and configuration of a STOMP application; see the module docstring.

    Args:
        app_prefix: destinations for handlers (Spring's
            ``setApplicationDestinationPrefixes``).
        user_prefix: user destinations (``setUserDestinationPrefix``).
        users: login -> passcode, the one-line authenticator.
        default: what the authorization rules decide when none matches.
        user_backlog: messages kept per user and destination while the user
            has no subscription there.
        user_backlog_ttl: seconds such a message is kept.
        errors_destination: where a handler's exception is reported to the
            sending session (under the user prefix).
    """

    def __init__(
        self,
        *,
        app_prefix: str = "/app",
        user_prefix: str = "/user",
        users: Mapping[str, str] | None = None,
        default: Literal["allow", "deny"] = "allow",
        user_backlog: int = 100,
        user_backlog_ttl: float = 60.0,
        errors_destination: str = "/queue/errors",
    ) -> None:
        self.app_prefix = "/" + app_prefix.strip("/")
        self.user_prefix = "/" + user_prefix.strip("/")
        self.users = dict(users) if users is not None else None
        self.default = default
        self.errors_destination = errors_destination
        self.app_route = AppRoute(self, self.app_prefix + "/")
        self.user_route = UserRoute(
            self.user_prefix + "/", max_backlog=user_backlog, backlog_ttl=user_backlog_ttl
        )
        self._messages: list[_Mapping] = []
        self._subscriptions: list[_Mapping] = []
        self._errors: list[tuple[tuple[type[BaseException], ...], ErrorHandler]] = []
        self._rules: list[_Rule] = []
        self._startup: list[Callable[[StompApp], Awaitable[None]]] = []
        self._authenticate: Callable[[Connect], object] | None = None
        self.interceptors: list[Callable[[Session, Event], Event | None]] = []
        self.outbound_interceptors: list[Callable[[Session, Event], Event | None]] = []
        self._broker: Broker | None = None
        self._workers: dict[str, _Worker] = {}

    # -- registration ------------------------------------------------------------------

    def message(
        self,
        path: str,
        *,
        send_to: str | None = None,
        send_to_user: str | None = None,
        broadcast: bool = True,
    ) -> Callable[[F], F]:
        """Handle SENDs to ``app_prefix + path`` (Spring's ``@MessageMapping``).

        The return value goes to ``send_to`` (default: ``/topic`` + ``path``),
        or with ``send_to_user`` to that destination of the sending user
        (every session of the user, or only the sending one with
        ``broadcast=False``)."""
        if send_to is not None and send_to_user is not None:
            raise ValueError("give send_to or send_to_user, not both")

        def register(handler: F) -> F:
            self._messages.append(
                _Mapping(
                    PathTemplate(path),
                    handler,
                    send_to,
                    send_to_user,
                    broadcast,
                    name=self.app_prefix + path,
                )
            )
            return handler

        return register

    def subscribe(self, path: str) -> Callable[[F], F]:
        """Answer a SUBSCRIBE to ``app_prefix + path`` once, with the handler's
        return value sent straight to that subscription (``@SubscribeMapping``)."""

        def register(handler: F) -> F:
            self._subscriptions.append(
                _Mapping(PathTemplate(path), handler, name=self.app_prefix + path)
            )
            return handler

        return register

    def exception_handler(self, *types: type[BaseException]) -> Callable[[F], F]:
        """Handle exceptions of ``types`` raised by handlers
        (``@MessageExceptionHandler``): ``handler(exc, message)``; its return
        value goes to the sending session's ``/user`` + ``errors_destination``."""

        def register(handler: F) -> F:
            self._errors.append((types or (Exception,), handler))
            return handler

        return register

    def on_startup(self, function: Callable[[StompApp], Awaitable[None]]) -> Callable[..., Any]:
        """Run ``await function(app)`` in the background once the broker serves
        (a price feed, say); it is cancelled when the broker stops."""
        self._startup.append(function)
        return function

    def authenticator(self, function: F) -> F:
        """Use ``function(connect) -> principal or None`` (sync or async) to
        authenticate CONNECT frames; None refuses the login."""
        self._authenticate = function
        return function

    def interceptor(self, function: F) -> F:
        """Run ``function(session, event) -> event or None`` on every client
        frame, before the broker applies it; None drops it, raising
        :class:`~stomp_proto.broker.Refusal` refuses it with an ERROR."""
        self.interceptors.append(function)
        return function

    def outbound(self, function: F) -> F:
        """Run ``function(session, event) -> event or None`` on every frame the
        broker is about to send a client (add headers, log); None drops it."""
        self.outbound_interceptors.append(function)
        return function

    def allow(
        self,
        command: Command | Iterable[Command],
        pattern: str,
        *,
        when: Callable[[Session], bool] | None = None,
    ) -> None:
        """Allow ``command`` (SEND, SUBSCRIBE or ``*``) to destinations matching
        ``pattern`` (``*`` and ``**`` as in topic patterns), if ``when(session)``
        holds. Rules are tried in order; the first that matches decides."""
        self._rule(command, pattern, True, when)

    def deny(
        self,
        command: Command | Iterable[Command],
        pattern: str,
        *,
        when: Callable[[Session], bool] | None = None,
    ) -> None:
        """Deny ``command`` to destinations matching ``pattern`` (see :meth:`allow`)."""
        self._rule(command, pattern, False, when)

    def _rule(
        self,
        command: Command | Iterable[Command],
        pattern: str,
        allow: bool,
        when: Callable[[Session], bool] | None,
    ) -> None:
        commands = frozenset([command] if isinstance(command, str) else command)
        unknown = commands - {"SEND", "SUBSCRIBE", "*"}
        if unknown:
            raise ValueError(f"rules are for SEND and SUBSCRIBE, not {sorted(unknown)}")
        compiled = compile_pattern(pattern)
        matcher: Callable[[str], bool] = pattern.__eq__ if compiled is None else compiled.match
        self._rules.append(_Rule(commands, pattern, allow, when, matcher))

    # -- serving -----------------------------------------------------------------------

    def broker(self, **options: Any) -> Broker:
        """A :class:`~stomp_proto.broker.Broker` serving this application
        (``options`` as the broker's: listeners, TLS, limits, policies)."""
        routes: list[Route] = [
            TopicRoute(),
            QueueRoute(
                max_queue_bytes=options.get("max_queue_bytes", 64 << 20),
                max_queue_messages=options.get("max_queue_messages", 1_000_000),
            ),
            self.app_route,
            self.user_route,
        ]
        authenticate = self._authenticate
        if authenticate is None and self.users is not None:
            users = self.users

            def authenticate(connect: Connect) -> object:
                # An unknown login is refused even without a passcode.
                if connect.login in users and users[connect.login] == connect.passcode:
                    return connect.login
                return None

        broker = Broker(
            routes=routes,
            authenticate=authenticate,
            authorize=self._authorize,
            on_start=[self._started, *options.pop("on_start", ())],
            inbound=[*self.interceptors, *options.pop("inbound", ())],
            outbound=[*self.outbound_interceptors, *options.pop("outbound", ())],
            **options,
        )
        if broker.relay is not None:  # user destinations reach every node
            self.user_route.bridge = broker.relay.bridge_users(self.user_route)
        return broker

    async def _started(self, broker: Broker) -> None:
        self._broker = broker
        for function in self._startup:
            broker.spawn(self._background, function)

    async def _background(self, function: Callable[[StompApp], Awaitable[None]]) -> None:
        try:
            await function(self)
        except Exception:
            log.exception("startup task %s failed", getattr(function, "__name__", function))

    @property
    def running(self) -> Broker:
        """The broker serving this application (RuntimeError before it starts)."""
        if self._broker is None or self._broker._thread is None:
            raise RuntimeError("the application is not being served: start its broker first")
        return self._broker

    # -- publishing from server code ----------------------------------------------------

    def send(
        self,
        destination: str,
        payload: object,
        *,
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> int:
        """Publish ``payload`` (bytes, str, or JSON) to a broker destination, from
        the broker's loop, from synchronous code or from any other thread
        (``SimpMessagingTemplate.convertAndSend``). Returns the copies sent."""
        body, ctype = encode(payload, content_type)
        return self.running.publish(destination, body, content_type=ctype, headers=list(headers))

    def send_to_user(
        self,
        user: str,
        destination: str,
        payload: object,
        *,
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> int:
        """Send ``payload`` to every session of ``user`` subscribed to
        ``/user`` + ``destination`` (kept in the user's backlog meanwhile);
        thread-safe like :meth:`send`. Returns the copies sent."""
        body, ctype = encode(payload, content_type)
        broker = self.running
        return broker.call_soon(
            self._to_user_now, broker, user, destination, body, ctype, tuple(headers), None
        )

    def _to_user_now(
        self,
        broker: Broker,
        user: str,
        destination: str,
        body: bytes,
        ctype: str | None,
        headers: tuple[tuple[str, str], ...],
        only: Session | None,
    ) -> int:
        router = broker.router
        entry = self._user_entry(router, destination, body, ctype, headers)
        posts = self.user_route.to_user(user, destination, entry, only=only)
        router.emit(posts)
        return len(posts)

    def _user_entry(
        self,
        router: Router,
        destination: str,
        body: bytes,
        ctype: str | None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Entry:
        """A message for a user destination, counted in the router's messages in."""
        router.messages_in[self.user_route.prefix] += 1
        return router._make_entry(self.user_prefix + destination, body, ctype, headers)

    # -- the routes call these ---------------------------------------------------------

    def find_message_handler(self, path: str) -> tuple[_Mapping, dict[str, str]] | None:
        for mapping in self._messages:
            variables = mapping.template.match(path)
            if variables is not None:
                return mapping, variables
        return None

    def find_subscribe_handler(self, path: str) -> tuple[_Mapping, dict[str, str]] | None:
        for mapping in self._subscriptions:
            variables = mapping.template.match(path)
            if variables is not None:
                return mapping, variables
        return None

    def run_message(
        self, found: tuple[_Mapping, dict[str, str]], session: Session, event: Send, path: str
    ) -> None:
        """Queue a SEND for its handler; the session's SENDs run in order."""
        worker = self._workers.get(session.sid)
        if worker is None:
            if len(self._workers) > 100_000:
                self._workers = {k: w for k, w in self._workers.items() if w.running}
            worker = self._workers[session.sid] = _Worker()
        worker.queue.append((found[0], session, event, path))
        if not worker.running:
            worker.running = True
            self.running.spawn(self._drain, session.sid, worker)

    async def _drain(self, sid: str, worker: _Worker) -> None:
        try:
            while worker.queue:
                if self._broker is None or self._broker._thread is None:
                    return  # the broker stopped while a handler ran: the rest is dropped
                mapping, session, event, path = worker.queue.popleft()
                found = mapping.template.match(path)
                message = self._message(session, event.destination, path, found or {}, event)
                await self._handle(mapping, session, message, event.receipt)
        finally:
            worker.running = False
            if not worker.queue:
                self._workers.pop(sid, None)

    def _message(
        self,
        session: Session,
        destination: str,
        path: str,
        variables: Mapping[str, str],
        event: Send | None,
        subscription: str | None = None,
    ) -> AppMessage:
        return AppMessage(
            destination=destination,
            path=path,
            variables=dict(variables),
            body=b"" if event is None else event.body,
            content_type=None if event is None else event.content_type,
            headers=() if event is None else event.headers,
            session_id=session.sid,
            user=session.user,
            principal=session.principal,
            subscription=subscription,
        )

    async def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        if inspect.iscoroutinefunction(function):
            return await function(*args)
        result = await anyio.to_thread.run_sync(lambda: function(*args))
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _handle(
        self, mapping: _Mapping, session: Session, message: AppMessage, receipt: str | None
    ) -> None:
        broker = self.running
        router = broker.router
        posts: list[Post] = []
        timing = broker._counters.handler("message", mapping.name)
        started = time.perf_counter()
        try:
            result = await self._call(mapping.handler, message)
            router.now = anyio.current_time()  # user backlogs measure from the reply
        except Exception as exc:
            timing.observe(time.perf_counter() - started, True)
            posts += await self._failed(exc, session, message, broker)
        else:
            timing.observe(time.perf_counter() - started, False)
            if result is not None:
                posts += self._route_result(mapping, session, message, result, router)
        if receipt is not None:
            posts.append((session, Receipt(receipt_id=receipt)))
        router.emit(posts)

    def _route_result(
        self,
        mapping: _Mapping,
        session: Session,
        message: AppMessage,
        result: object,
        router: Router,
    ) -> list[Post]:
        body, ctype = encode(result)
        if mapping.send_to_user is not None:
            user = session.user or session.sid
            entry = self._user_entry(router, mapping.send_to_user, body, ctype)
            only = None if mapping.broadcast else session
            return self.user_route.to_user(user, mapping.send_to_user, entry, only=only)
        destination = mapping.send_to or ("/topic" + message.path)
        try:
            return router.publish(destination, body, ctype)
        except (ValueError, OverflowError) as exc:
            log.warning("reply of %s to %r not sent: %s", message.destination, destination, exc)
            return []

    async def _failed(
        self, exc: Exception, session: Session, message: AppMessage, broker: Broker
    ) -> list[Post]:
        for types, handler in self._errors:
            if isinstance(exc, types):
                try:
                    reply = await self._call(handler, exc, message)
                except Exception:
                    log.exception("exception handler for %s failed", message.destination)
                    reply = {"error": str(exc)}
                break
        else:
            log.error(
                "handler for %s failed (session %s)",
                message.destination,
                session.sid,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
            reply = {"error": str(exc) or type(exc).__name__}
        if reply is None:
            return []
        router = broker.router
        body, ctype = encode(reply)
        entry = self._user_entry(router, self.errors_destination, body, ctype)
        return self.user_route.to_user(
            session.user or session.sid, self.errors_destination, entry, only=session
        )

    def run_subscribe(
        self, found: tuple[_Mapping, dict[str, str]], sub: Subscription, path: str
    ) -> None:
        message = self._message(
            sub.session, sub.destination, path, found[1], None, subscription=sub.sub_id
        )
        self.running.spawn(self._answer_subscription, found[0], sub, message)

    async def _answer_subscription(
        self, mapping: _Mapping, sub: Subscription, message: AppMessage
    ) -> None:
        broker = self.running
        router = broker.router
        timing = broker._counters.handler("subscribe", mapping.name)
        started = time.perf_counter()
        try:
            result = await self._call(mapping.handler, message)
        except Exception as exc:
            timing.observe(time.perf_counter() - started, True)
            router.emit(await self._failed(exc, sub.session, message, broker))
            return
        timing.observe(time.perf_counter() - started, False)
        if result is None or sub.session.ended or not sub.active:
            return
        body, ctype = encode(result)
        entry = router._make_entry(sub.destination, body, ctype, ())
        router.emit([router.deliver(sub, entry, None, False)])

    # -- authorization -----------------------------------------------------------------

    def _authorize(self, session: Session, event: Event) -> str | None:
        if not self._rules:
            return None if self.default == "allow" else "denied by default"
        command = event.COMMAND
        destination: str = getattr(event, "destination", "") or ""
        for rule in self._rules:
            if ("*" in rule.commands or command in rule.commands) and rule.matcher(destination):
                if rule.when is not None and not rule.when(session):
                    continue
                return None if rule.allow else f"rule deny {rule.pattern!r}"
        return None if self.default == "allow" else "no rule allows it"


def authenticated(session: Session) -> bool:
    """A rule condition: the session logged in."""
    return session.user is not None
