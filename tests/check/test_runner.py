"""The checker's own machinery: selection, URLs, the runner's time bounds, the
report (text and JSON) and the command line's exit statuses.

The servers here are fakes (tests/check/fakes.py) that are wrong on purpose:
one that never answers, one that answers CONNECT and then nothing, one that
accepts every frame. What the catalogue finds on real servers is in
test_ourbroker.py and tests/interop/test_check_interop.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from stomp_proto import _cli as dispatcher
from stomp_proto import check
from stomp_proto.check import CHECKS, SECTIONS, Check, Level, Verdict
from stomp_proto.check._cli import main
from stomp_proto.check._model import Fail
from stomp_proto.check._runner import plan, run_checks, select
from stomp_proto.check._wire import Context, parse_target

from .fakes import fake_server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the catalogue and its selection --------------------------------------------------


def test_the_catalogue_is_tied_to_the_checklist() -> None:
    ids = [c.id for c in CHECKS]
    assert len(ids) == len(set(ids))
    order = list(SECTIONS)
    assert [order.index(c.section) for c in CHECKS] == sorted(
        order.index(c.section) for c in CHECKS
    )
    for c in CHECKS:
        assert 1 <= c.number <= 120, c  # the numbered requirements of stomp-notes §4
        assert c.title and not c.title.endswith("."), c
        assert set(c.versions) <= {"1.0", "1.1", "1.2"}, c
        assert set(c.default) <= set(c.versions), c
        assert c.run is not None
    assert {c.section for c in CHECKS} == set(SECTIONS)
    assert any(c.level is Level.MUST for c in CHECKS)
    assert any(c.level is Level.POLICY for c in CHECKS)


def test_selectors_name_sections_letters_numbers_and_ids() -> None:
    framing = select(CHECKS, ["framing"])
    assert framing and all(c.section == "framing" for c in framing)
    assert select(CHECKS, ["A"]) == framing
    assert {c.number for c in select(CHECKS, ["26"])} == {26}
    assert select(CHECKS, ["#26"]) == select(CHECKS, ["26"])
    escapes = select(CHECKS, ["framing/*escape*"])
    assert escapes and all("escape" in c.id for c in escapes)
    assert select(CHECKS, ["framing"], ["26"]) == [c for c in framing if c.number != 26]
    assert select(CHECKS) == list(CHECKS)


def test_a_selector_that_names_nothing_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'framming' names no check"):
        select(CHECKS, ["framming"])
    with pytest.raises(ValueError, match="'999' names no check"):
        select(CHECKS, [], ["999"])


def test_the_plan_runs_default_versions_or_the_one_asked_for() -> None:
    layout = [c for c in CHECKS if c.id == "framing/frame-layout"]
    assert [v for _, v in plan(layout)] == ["1.0", "1.1", "1.2"]
    assert [v for _, v in plan(layout, "1.1")] == ["1.1"]
    crlf = [c for c in CHECKS if c.id == "framing/crlf"]  # 1.2 only
    assert [v for _, v in plan(crlf)] == ["1.2"]
    assert plan(crlf, "1.1") == []
    free = [c for c in CHECKS if c.id == "connect/highest-version"]  # version-free
    assert [v for _, v in plan(free)] == [""] == [v for _, v in plan(free, "1.0")]
    everything = plan(CHECKS, "1.1")
    assert all(v in ("1.1", "") for _, v in everything)
    assert len(everything) == sum(1 for c in CHECKS if not c.versions or "1.1" in c.versions)


# -- URLs ---------------------------------------------------------------------------------


def test_urls() -> None:
    target = parse_target("stomp://guest:gu%3Aest@broker.example:1234/%2F")
    assert (target.scheme, target.host, target.port, target.vhost) == (
        "stomp",
        "broker.example",
        1234,
        "/",
    )
    assert (target.login, target.passcode, target.ssl, target.path) == ("guest", "gu:est", None, "")
    assert target.display() == "stomp://guest@broker.example:1234"  # no passcode
    plain = parse_target("stomp://localhost")
    assert (plain.port, plain.vhost, plain.login) == (61613, "localhost", None)
    assert parse_target("stomp://localhost", vhost="other").vhost == "other"
    tls = parse_target("stomps://localhost/vh", insecure=True)
    assert (tls.port, tls.vhost) == (61614, "vh")
    assert tls.ssl is not None and not tls.ssl.check_hostname
    ws = parse_target("ws://h:15674/ws?x=1")
    assert (ws.websocket, ws.path, ws.vhost, ws.port) == (True, "/ws?x=1", "h", 15674)
    assert parse_target("wss://h/stomp").port == 443
    assert parse_target("stomp://[::1]:61613").display() == "stomp://[::1]:61613"


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("http://localhost:61613", {}, "must start with stomp://"),
        ("localhost:61613", {}, "must start with stomp://"),
        ("stomp://localhost:http", {}, "port is not a number"),
        ("stomp://:61613", {}, "no host name"),
        ("stomp://localhost?a=1", {}, "no query"),
        ("stomp://localhost", {"insecure": True}, "need a stomps:// or wss:// URL"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, options: dict[str, bool], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_target(url, **options)  # type: ignore[arg-type]


# -- the command line -------------------------------------------------------------------


def test_check_is_a_stomp_proto_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert dispatcher.main(["--help"]) == 0
    assert "  check " in capsys.readouterr().out
    assert dispatcher.main(["check", "--list", "--only", "receipts"]) == 0
    out = capsys.readouterr().out
    assert "receipts/every-frame" in out
    assert "framing/" not in out


def test_list_shows_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(c.id in out for c in CHECKS)
    assert all(f"{letter}. {title}" in out for letter, title in SECTIONS.values())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give the server's URL"),
        (["http://x"], "must start with stomp://"),
        (["stomp://x", "--only", "nothing-like-this"], "names no check"),
        (["stomp://x", "--only", "framing/crlf", "--version", "1.1"], "no check applies"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("stomp-proto check: ") and message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("option", [["--timeout", "0"], ["--timeout", "x"], ["--jobs", "0"]])
def test_bad_option_values_exit_2(option: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["stomp://x", *option])
    assert exit.value.code == 2
    assert "expected" in capsys.readouterr().err


def test_an_unreachable_server_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    assert main([f"stomp://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert f"stomp://127.0.0.1:{port}: cannot connect" in err
    assert "Traceback" not in err


def test_a_server_that_never_answers_exits_2_within_the_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with fake_server("silent") as port:
        began = time.monotonic()
        assert main([f"stomp://127.0.0.1:{port}", "--timeout", "0.3"]) == 2
        assert time.monotonic() - began < 5
    err = capsys.readouterr().err
    assert "no answer within 0.3 s" in err or "instead of answering CONNECT" in err


# -- the runner's time bounds ---------------------------------------------------------


def run(port: int, **options: object) -> check.Report:
    target = parse_target(f"stomp://127.0.0.1:{port}")
    return asyncio.run(run_checks(target, **options))  # type: ignore[arg-type]


def test_checks_fail_in_bounded_time_against_a_server_that_stops_answering() -> None:
    chosen = [
        "framing/command-case",
        "frames/send-without-destination",
        "receipts/every-frame",
        "heart-beat/server-beats",
        "acks/client-individual",
    ]
    with fake_server("connect-only") as port:
        report = run(port, only=chosen, timeout=0.3, jobs=2)
    verdicts = report.verdicts()
    assert verdicts == {
        "framing/command-case@1.2": "FAIL",
        "frames/send-without-destination@1.2": "FAIL",
        "receipts/every-frame@1.2": "FAIL",
        "heart-beat/server-beats@1.2": "SKIP",  # CONNECTED offered no heart-beats
        "acks/client-individual@1.2": "FAIL",
    }
    reasons = {r.key: r.reason or "" for r in report.results}
    assert (
        "neither answered nor closed the connection within 0.3 s"
        in reasons["framing/command-case@1.2"]
    )
    assert "within 0.3 s" in reasons["receipts/every-frame@1.2"]
    assert "offers no heart-beats" in reasons["heart-beat/server-beats@1.2"]
    for result in report.results:
        assert result.seconds < result.check.slow * 0.3 + 2.5, result.key
    assert report.seconds < 10
    assert not report.passed


def test_a_check_over_its_budget_fails_and_a_checker_bug_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import stomp_proto.check._runner as runner

    monkeypatch.setattr(runner, "_GRACE", 0.0)

    async def forever(ctx: Context) -> None:
        await asyncio.Event().wait()

    async def buggy(ctx: Context) -> None:
        raise RuntimeError("boom")

    async def short(ctx: Context) -> None:
        raise Fail("not quite")

    checks = [
        Check("framing/forever", 1, Level.MUST, "never ends", versions=(), slow=2.0, run=forever),
        Check("framing/buggy", 2, Level.MUST, "has a bug", versions=(), run=buggy),
        Check("framing/short", 3, Level.SHOULD, "falls short", versions=(), run=short),
    ]
    with fake_server("connect-only") as port:
        began = time.monotonic()
        report = run(port, checks=checks, timeout=0.25)
        assert time.monotonic() - began < 5
    forever_result, buggy_result, short_result = report.results
    assert forever_result.verdict is Verdict.FAIL
    assert forever_result.reason == "no verdict within 0.5 s"
    assert buggy_result.verdict is Verdict.FAIL
    assert buggy_result.reason == "checker error: RuntimeError: boom"
    assert any("Traceback" in str(data) for _, _, data in buggy_result.transcript)
    assert (short_result.verdict, short_result.reason) == (Verdict.WARN, "not quite")


def test_results_come_in_catalogue_order_and_levels_decide_fail_or_warn() -> None:
    chosen = ["framing/command-case", "framing/header-without-colon", "connect/highest-version"]
    with fake_server("yes-man") as port:
        report = run(port, only=chosen, timeout=0.5)
    assert [r.check.id for r in report.results] == [
        "framing/command-case",
        "framing/header-without-colon",
        "connect/highest-version",
    ]
    verdicts = report.verdicts()
    assert verdicts["framing/command-case@1.2"] == "FAIL"  # a MUST
    assert verdicts["framing/header-without-colon@1.2"] == "WARN"  # a POLICY
    assert verdicts["connect/highest-version"] == "PASS"
    assert report.versions == ("1.0", "1.1", "1.2") and report.server == "fake/1"


# -- the report ---------------------------------------------------------------------------


def test_the_text_report_shows_the_bytes_of_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    with fake_server("yes-man") as port:
        status = main(
            [
                f"stomp://guest:sesame@127.0.0.1:{port}",
                "--only",
                "framing/command-case,connect/highest-version",
            ]
        )
    assert status == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("stomp-proto check ")
    assert f"stomp://guest@127.0.0.1:{port} (fake/1)" in lines[0]
    assert "the server accepts STOMP 1.0, 1.1, 1.2; 2 checks" in out
    assert "A. Framing and parsing" in out and "B. Connection lifecycle" in out
    fail = next(i for i, line in enumerate(lines) if line.startswith("  FAIL"))
    assert "#2" in lines[fail] and "framing/command-case" in lines[fail] and "MUST" in lines[fail]
    assert "the server accepted a 'send' command: RECEIPT receipt-id:c1-r1" in lines[fail + 1]
    shown = "\n".join(lines[fail + 2 :])
    assert (
        "c1 sent b'CONNECT\\naccept-version:1.2\\nhost:127.0.0.1\\nlogin:guest\\npasscode:********"
        in shown
    )
    assert "sesame" not in out  # the passcode never shows
    assert "c1 sent b'send\\ndestination:/topic/stomp-check-" in shown
    assert "c1 received b'RECEIPT\\nreceipt-id:c1-r1\\n\\n\\x00" in shown
    assert "  PASS  MUST    #38   -    connect/highest-version" in out
    assert out.rstrip().endswith("1 MUST requirement failed")


def test_the_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    with fake_server("yes-man") as port:
        status = main([f"stomp://127.0.0.1:{port}", "--json", "--only", "B", "--timeout", "0.5"])
    report = json.loads(capsys.readouterr().out)
    assert status == (0 if report["passed"] else 1)
    assert set(report) == {"target", "server", "versions", "passed", "counts", "seconds", "results"}
    assert report["target"] == f"stomp://127.0.0.1:{port}"
    assert report["versions"] == ["1.0", "1.1", "1.2"]
    assert set(report["counts"]) == {"PASS", "FAIL", "WARN", "SKIP"}
    assert sum(report["counts"].values()) == len(report["results"])
    fields = {
        "key",
        "id",
        "section",
        "number",
        "level",
        "version",
        "title",
        "verdict",
        "reason",
        "seconds",
        "transcript",
    }
    for result in report["results"]:
        assert set(result) == fields
        assert result["section"] == "connect"
        assert result["verdict"] in ("PASS", "FAIL", "WARN", "SKIP")
        assert result["level"] in ("MUST", "SHOULD", "MAY", "POLICY")
        assert result["key"] == result["id"] + (
            f"@{result['version']}" if result["version"] else ""
        )
        assert (result["reason"] is None) == (result["verdict"] == "PASS")
        for entry in result["transcript"]:
            assert set(entry) == {"connection", "event", "data"}
            assert entry["event"] in ("sent", "received", "note")
    no_common = next(r for r in report["results"] if r["id"] == "connect/no-common-version")
    assert no_common["verdict"] == "FAIL"  # the yes-man accepts accept-version:2.0,3.1
    assert any(
        e["data"].startswith("CONNECT\\naccept-version:2.0,3.1") for e in no_common["transcript"]
    )


def test_the_python_api(capsys: pytest.CaptureFixture[str]) -> None:
    with fake_server("yes-man") as port:
        report = check.run(
            f"stomp://127.0.0.1:{port}", only=["connect/highest-version"], timeout=0.5
        )
    assert report.passed and report.verdicts() == {"connect/highest-version": "PASS"}
    with pytest.raises(check.PreflightError, match="cannot connect"):
        check.run(f"stomp://127.0.0.1:{closed_port()}", only=["connect"])
    with pytest.raises(ValueError, match="--version must be one of"):
        check.run("stomp://127.0.0.1:1", version="2.0")
