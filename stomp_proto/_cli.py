"""The ``stomp-proto`` console script: subcommands, ``--version``, friendly failures.

Standard library only, so that it runs (and says what to install) even when
the optional extras are missing: each subcommand's module is imported only
when it is chosen, and a missing extra is one line naming the ``pip install``
that brings it, not a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from . import __version__

USAGE = """\
usage: stomp-proto [--version] [--help] COMMAND [options]

commands:
  broker   run the reference broker (STOMP over TCP and WebSocket)
  run      serve a STOMP application: stomp-proto run MODULE:ATTR
  demo     the stock portfolio demo in the browser (http://127.0.0.1:8080/)
  check    check a STOMP server against the specification: stomp-proto check stomp://HOST:PORT

'stomp-proto COMMAND --help' lists a command's options (stomp-proto broker --help).
"""

#: module names whose absence means an extra is missing, and which extra
_EXTRAS = {
    "anyio": "broker",
    "sniffio": "broker",
    "exceptiongroup": "broker",
    "wsproto": "broker",
    "h11": "broker",
    "trio": "trio",
}


#: command -> (module, function)
_COMMANDS = {
    "broker": ("stomp_proto.broker.__main__", "main"),
    "run": ("stomp_proto.broker.__main__", "run_app"),
    "demo": ("stomp_proto.demo.__main__", "main"),
    "check": ("stomp_proto.check._cli", "main"),
}


def _command(name: str) -> Callable[[Sequence[str]], int]:
    module, function = _COMMANDS[name]
    found: Callable[[Sequence[str]], int] = getattr(importlib.import_module(module), function)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``stomp-proto ARGV``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write(USAGE)
        return 2
    if args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    if args[0] in ("-V", "--version"):
        print(f"stomp-proto {__version__}")
        return 0
    name = args[0]
    if name not in _COMMANDS:
        sys.stderr.write(f"stomp-proto: unknown command {name!r}\n\n{USAGE}")
        return 2
    try:
        command = _command(name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        extra = _EXTRAS.get(missing)
        if extra is None:
            raise
        print(
            f"stomp-proto {name} needs {missing!r}: pip install 'stomp-proto[{extra}]'",
            file=sys.stderr,
        )
        return 1
    try:
        return command(args[1:])
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `stomp-proto ... | head`: the reader left
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
