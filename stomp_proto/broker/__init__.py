"""The stomp-proto reference broker: ``stomp-proto broker``, or embedded as :class:`Broker`.

Built on the public core and the asyncio adapter only. See the docs' broker
guide for the destination grammar, acknowledgement and redelivery rules,
limits, and how it differs from Spring's simple broker and from RabbitMQ.
"""

from ._broker import Broker
from ._engine import Engine, compile_pattern

__all__ = ("Broker", "Engine", "compile_pattern")
