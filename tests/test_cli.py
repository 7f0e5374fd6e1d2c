"""The ``stomp-proto`` console script's dispatcher (stomp_proto._cli)."""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence

import pytest

from stomp_proto import __version__, _cli


def test_usage_version_and_unknown_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main([]) == 2
    assert "commands:" in capsys.readouterr().err
    assert _cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("broker", "run MODULE:ATTR", "demo"))
    assert _cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"stomp-proto {__version__}\n"
    assert _cli.main(["serve"]) == 2
    assert "unknown command 'serve'" in capsys.readouterr().err


def fake(monkeypatch: pytest.MonkeyPatch, behaviour: BaseException | int) -> list[list[str]]:
    calls: list[list[str]] = []

    def command(argv: Sequence[str]) -> int:
        calls.append(list(argv))
        if isinstance(behaviour, BaseException):
            raise behaviour
        return behaviour

    monkeypatch.setitem(sys.modules, "fake_command", types.SimpleNamespace(main=command))
    commands = {name: ("fake_command", "main") for name in _cli._COMMANDS}
    monkeypatch.setattr(_cli, "_COMMANDS", commands)
    return calls


def test_a_command_gets_the_rest_of_the_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake(monkeypatch, 7)
    assert _cli.main(["broker", "--tcp", "127.0.0.1:1"]) == 7
    assert calls == [["--tcp", "127.0.0.1:1"]]


def test_interrupt_and_closed_pipe_end_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, KeyboardInterrupt())
    assert _cli.main(["broker"]) == 130
    fake(monkeypatch, BrokenPipeError())
    monkeypatch.setattr(sys, "stderr", open("/dev/null", "w"))  # noqa: SIM115
    assert _cli.main(["demo"]) == 0


def test_a_missing_extra_names_the_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a command whose module needs a package that is not installed
    monkeypatch.setattr(_cli, "_COMMANDS", {"broker": ("no_such_extra_pkg.sub", "main")})
    with pytest.raises(ModuleNotFoundError):
        _cli.main(["broker"])  # not a known extra: the error stands
    monkeypatch.setattr(_cli, "_EXTRAS", {"no_such_extra_pkg": "broker"})
    assert _cli.main(["broker"]) == 1
    assert capsys.readouterr().err == (
        "stomp-proto broker needs 'no_such_extra_pkg': pip install 'stomp-proto[broker]'\n"
    )
