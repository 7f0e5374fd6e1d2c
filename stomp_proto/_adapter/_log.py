"""Log lines rate-limited per cause, so that one client (or a thousand) cannot flood the log.

A server's warnings are caused by its peers: an accept loop out of file
descriptors, a handler that fails on every connection, clients that break the
protocol. Each call names its *cause* (a short string); at most ``burst``
lines per cause are written per ``period`` seconds, and the first line after
a quiet window says how many were suppressed. The clock is an argument, so
tests drive it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """At most ``burst`` lines per cause per ``period`` seconds, then a count.

    ``log(cause, level, message, *args, exc_info=...)`` returns whether the
    line was written. Causes are kept in a bounded table (``max_causes``): a
    flood of distinct causes starts the count over rather than growing memory.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 5,
        period: float = 10.0,
        max_causes: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.burst = burst
        self.period = period
        self.max_causes = max_causes
        self.clock = clock
        # cause -> [window start, lines written in it, lines suppressed in it]
        self._windows: dict[str, list[float]] = {}

    def __call__(
        self,
        cause: str,
        level: int,
        message: str,
        *args: object,
        exc_info: BaseException | bool | None = None,
    ) -> bool:
        now = self.clock()
        window = self._windows.get(cause)
        suppressed = 0
        if window is None or now - window[0] >= self.period:
            if window is not None:
                suppressed = int(window[2])
            elif len(self._windows) >= self.max_causes:
                self._windows.clear()
            window = self._windows[cause] = [now, 0.0, 0.0]
        if window[1] >= self.burst:
            window[2] += 1
            return False
        window[1] += 1
        if suppressed:
            message = f"{message} ({suppressed} similar lines suppressed)"
        self.logger.log(level, message, *args, exc_info=exc_info, stacklevel=2)
        return True

    def suppressed(self, cause: str) -> int:
        """Lines of ``cause`` suppressed in its current window."""
        window = self._windows.get(cause)
        return 0 if window is None else int(window[2])
