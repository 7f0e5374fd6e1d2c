"""Heart-beat negotiation and deadlines, with time passed in.

STOMP 1.1/1.2 "Heart-beating": CONNECT carries ``heart-beat:cx,cy`` and
CONNECTED ``heart-beat:sx,sy`` (milliseconds, 0 = cannot / does not want).
The client sends at least every ``Tcs`` ms and the server every ``Tsc`` ms::

    Tcs = 0 if cx == 0 or sy == 0 else max(cx, sy)
    Tsc = 0 if sx == 0 or cy == 0 else max(sx, cy)

The receiver "SHOULD be tolerant and take into account an error margin": a
peer is declared dead only after ``grace`` times its interval without any
received byte (stomp-notes A16: RabbitMQ 2-3x, Artemis 2x, Spring 3x; our
default is 2).

Nothing here reads a clock (aioquic's rule): every method takes ``now`` in
seconds from any monotonic clock the caller likes.
"""

from __future__ import annotations

__all__ = ["HeartbeatTimer", "negotiate"]


def negotiate(client: tuple[int, int], server: tuple[int, int]) -> tuple[int, int]:
    """Return ``(Tcs, Tsc)``: the client-to-server and server-to-client intervals, in ms."""
    cx, cy = client
    sx, sy = server
    client_to_server = 0 if cx == 0 or sy == 0 else max(cx, sy)
    server_to_client = 0 if sx == 0 or cy == 0 else max(sx, cy)
    return client_to_server, server_to_client


class HeartbeatTimer:
    """Send and receive deadlines for one side of a session.

    Args:
        send_ms: how often we must send something (0 = never).
        receive_ms: how often the peer must send something (0 = never checked).
        grace: how many receive intervals of silence mean the peer is dead.
        now: the start time, or None when the caller never told us the time;
            then the timers start at the first :meth:`poll`.
    """

    def __init__(self, send_ms: int, receive_ms: int, grace: float, now: float | None) -> None:
        self.send_interval = send_ms / 1000
        self.receive_timeout = receive_ms * grace / 1000
        self.last_send = self.last_receive = now
        self.unstamped_receive = False

    def deadline(self) -> float | None:
        """When :meth:`poll` should next be called (None: never)."""
        if self.last_send is None or self.last_receive is None:
            return 0.0  # not started: call poll() at once to start the clock
        deadlines = []
        if self.send_interval:
            deadlines.append(self.last_send + self.send_interval)
        if self.receive_timeout:
            deadlines.append(self.last_receive + self.receive_timeout)
        return min(deadlines) if deadlines else None

    def sent(self, now: float | None) -> None:
        """Record that we sent something (at ``now``, or as late as we know of)."""
        if now is not None:
            self.last_send = now

    def received(self, now: float | None) -> None:
        """Record that the peer sent something; unknown times count at the next poll."""
        if now is None:
            self.unstamped_receive = True
        else:
            self.last_receive = now
            self.unstamped_receive = False

    def poll(self, now: float) -> tuple[bool, float | None]:
        """Return (send a heart-beat now?, seconds of silence if the peer is dead else None)."""
        if self.last_send is None or self.last_receive is None:
            self.last_send = self.last_receive = now
        if self.unstamped_receive:
            self.last_receive = now
            self.unstamped_receive = False
        if self.receive_timeout and now - self.last_receive >= self.receive_timeout:
            return False, now - self.last_receive
        if self.send_interval and now - self.last_send >= self.send_interval:
            self.last_send = now
            return True, None
        return False, None
