"""Running the catalogue: the preflight, selection, and the checks side by side.

The preflight opens one session per STOMP version to learn which versions
the server speaks (and that the URL and login work at all). Each check then
runs in every version it applies to that was asked for, in a context of its
own (its own connections, its own destinations), bounded by ``slow`` times
``--timeout``; up to ``jobs`` checks run at once, so that the ones that must
wait (for a close that never comes, for heart-beats) overlap. Results come
back in catalogue order whatever order they finished in.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import ssl
import time
import traceback
from collections.abc import Callable, Iterable, Sequence

from .. import SUPPORTED_VERSIONS
from ._catalogue import CHECKS
from ._model import SECTIONS, Check, Fail, Level, Outcome, Report, Result, Verdict
from ._wire import Context, ServerError, Target

__all__ = ["PreflightError", "plan", "run_checks", "select"]

#: Seconds a check may take beyond ``slow * timeout`` before it is stopped.
_GRACE = 2.0


class PreflightError(Exception):
    """The server could not be reached, or refused every CONNECT."""


def _matches(check: Check, selector: str) -> bool:
    number = selector.removeprefix("#")
    return (
        selector in (check.section, SECTIONS[check.section][0])
        or (number.isdigit() and int(number) == check.number)
        or fnmatch.fnmatchcase(check.id, selector)
    )


def select(
    checks: Sequence[Check], only: Iterable[str] = (), skip: Iterable[str] = ()
) -> list[Check]:
    """The checks ``only`` names (all if empty), less those ``skip`` names.

    A selector is a section name (``framing``) or letter (``A``), a
    requirement number (``26`` or ``#26``), or a check id, with ``*``
    wildcards (``framing/*escape*``).

    Raises:
        ValueError: a selector names no check (a typo), naming it.
    """
    only, skip = list(only), list(skip)
    for selector in [*only, *skip]:
        if not any(_matches(c, selector) for c in checks):
            raise ValueError(
                f"{selector!r} names no check (a section such as 'framing', a requirement "
                f"number such as 26, or a check id such as 'framing/crlf'; --list shows them)"
            )
    chosen = [c for c in checks if not only or any(_matches(c, s) for s in only)]
    return [c for c in chosen if not any(_matches(c, s) for s in skip)]


def plan(checks: Sequence[Check], version: str | None = None) -> list[tuple[Check, str]]:
    """``(check, version)`` runs: each check's default versions, or ``version`` alone.

    A version-free check runs once (version ``""``) whatever ``version`` is.
    """
    runs = []
    for check in checks:
        if not check.versions:
            runs.append((check, ""))
        elif version is None:
            runs.extend((check, v) for v in check.run_versions())
        elif version in check.versions:
            runs.append((check, version))
    return runs


async def preflight(target: Target, timeout: float) -> tuple[tuple[str, ...], str | None]:
    """The versions the server accepts, and its CONNECTED ``server`` header.

    Raises:
        PreflightError: the server cannot be reached, or accepts no version.
    """

    async def attempt(version: str) -> tuple[str, str | None] | BaseException:
        ctx = Context(target, version=version, versions=(version,), timeout=timeout)
        try:
            probe = ctx.probe()
            await asyncio.wait_for(probe.open(), timeout)
            reply = await probe.connect(version)
            return reply.get("version") or "1.0", reply.get("server")
        except (Outcome, OSError, ssl.SSLError, ConnectionError, RuntimeError) as exc:
            return exc
        except asyncio.TimeoutError:
            return TimeoutError(f"no connection within {timeout:g} s")
        finally:
            await ctx.aclose()

    answers = await asyncio.gather(*(attempt(v) for v in SUPPORTED_VERSIONS))
    versions, server, failures = [], None, []
    for asked, answer in zip(SUPPORTED_VERSIONS, answers, strict=True):
        if isinstance(answer, BaseException):
            failures.append((asked, answer))
        elif answer[0] == asked:
            versions.append(asked)
            server = server or answer[1]
    if versions:
        return tuple(versions), server
    _, why = failures[-1] if failures else ("", None)
    raise PreflightError(_explain(target, why))


def _explain(target: Target, why: BaseException | None) -> str:
    where = target.display()
    if isinstance(why, ServerError):
        hint = ""
        if "host" in why.reason.lower() or "virtual" in why.reason.lower():
            how = "--vhost" if target.websocket else "--vhost or the URL's path (/%2F for /)"
            hint = f" (the CONNECT host header was {target.vhost!r}: give another with {how})"
        return f"{where}: {why.reason}{hint}"
    if isinstance(why, ssl.SSLError):
        return f"{where}: TLS failed: {why} (--ca-file FILE trusts another CA)"
    if isinstance(why, Fail):
        return f"{where}: {why.reason}"
    if why is None:
        return f"{where}: the server accepted none of STOMP 1.0, 1.1 and 1.2"
    return f"{where}: cannot connect: {why}"


async def run_one(
    check: Check,
    version: str,
    target: Target,
    versions: tuple[str, ...],
    *,
    timeout: float,
    queue_prefix: str,
    topic_prefix: str,
    run_id: str,
) -> Result:
    """Run one check in one version and judge it."""
    if version and version not in versions:
        return Result(check, version, Verdict.SKIP, f"the server does not accept STOMP {version}")
    if check.websocket and not target.websocket:
        return Result(check, version, Verdict.SKIP, "needs a ws:// or wss:// URL")
    assert check.run is not None
    ctx = Context(
        target,
        version=version,
        versions=versions,
        timeout=timeout,
        queue_prefix=queue_prefix,
        topic_prefix=topic_prefix,
        run_id=run_id,
    )
    level = check.level_for(version)
    began = time.monotonic()
    budget = check.slow * timeout + _GRACE
    verdict, reason = Verdict.PASS, None
    try:
        await asyncio.wait_for(check.run(ctx), budget)
    except Outcome as outcome:
        verdict, reason = outcome.verdict, outcome.reason
    except asyncio.TimeoutError:
        verdict, reason = Verdict.FAIL, f"no verdict within {budget:g} s"
    except (ConnectionError, OSError, ssl.SSLError) as exc:
        verdict, reason = Verdict.FAIL, f"the connection failed: {exc}"
    except Exception as exc:  # a bug of the checker, reported as such
        verdict, reason = Verdict.FAIL, f"checker error: {type(exc).__name__}: {exc}"
        ctx.note(traceback.format_exc(limit=8))
    finally:
        await ctx.aclose()
    if verdict is Verdict.FAIL and level is not Level.MUST:
        verdict = Verdict.WARN
    return Result(check, version, verdict, reason, ctx.transcript, time.monotonic() - began)


async def run_checks(
    target: Target,
    *,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    version: str | None = None,
    timeout: float = 2.0,
    jobs: int = 8,
    queue_prefix: str = "/queue/",
    topic_prefix: str = "/topic/",
    checks: Sequence[Check] = CHECKS,
    on_start: Callable[[str, tuple[str, ...], str | None, int], None] | None = None,
    on_result: Callable[[int, Result], None] | None = None,
) -> Report:
    """Run the selected checks against ``target`` and return the :class:`Report`.

    ``on_start(target, versions, server, runs)`` is called after the
    preflight, and ``on_result(index, result)`` as each run finishes
    (``index`` is its place in the report), for a report printed as it goes.

    Raises:
        ValueError: a bad selector or option.
        PreflightError: the server cannot be reached or refuses every CONNECT.
    """
    if version is not None and version not in SUPPORTED_VERSIONS:
        raise ValueError(f"--version must be one of {', '.join(SUPPORTED_VERSIONS)}")
    if timeout <= 0:
        raise ValueError("--timeout must be positive")
    if jobs < 1:
        raise ValueError("--jobs must be at least 1")
    runs = plan(select(checks, only, skip), version)
    began = time.monotonic()
    versions, server = await preflight(target, timeout)
    if on_start is not None:
        on_start(target.display(), versions, server, len(runs))
    run_id = os.urandom(4).hex()
    gate = asyncio.Semaphore(jobs)
    results: list[Result | None] = [None] * len(runs)

    async def one(index: int, check: Check, run_version: str) -> None:
        async with gate:
            result = await run_one(
                check,
                run_version,
                target,
                versions,
                timeout=timeout,
                queue_prefix=queue_prefix,
                topic_prefix=topic_prefix,
                run_id=run_id,
            )
        results[index] = result
        if on_result is not None:
            on_result(index, result)

    await asyncio.gather(*(one(i, c, v) for i, (c, v) in enumerate(runs)))
    done = [r for r in results if r is not None]
    return Report(target.display(), versions, server, done, time.monotonic() - began)
