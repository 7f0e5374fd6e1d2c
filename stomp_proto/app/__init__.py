"""Building STOMP applications: Spring's STOMP programming model over the broker.

``pip install 'stomp-proto[broker]'``. A :class:`StompApp` maps application
destinations (``/app/...``) to Python handlers, routes their return values to
topics or to users, answers subscriptions directly, reports handler errors to
the sender, authenticates and authorizes, and publishes from server code in
any thread. See the docs' "Building a STOMP application" page.
"""

from ._app import AppMessage, StompApp, authenticated
from ._routes import AppRoute, PathTemplate, UserRoute

__all__ = ("AppMessage", "AppRoute", "PathTemplate", "StompApp", "UserRoute", "authenticated")
