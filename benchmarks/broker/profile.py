"""``--py-spy FILE``: sample our broker with py-spy while the scenarios run.

py-spy (``pip install py-spy``) attaches to the broker's PID and writes
collapsed stacks (``--format raw``, one ``frame;frame;... count`` a line) to
FILE; :func:`summary` turns them into the functions with the most self time
and the most inclusive time, which is what README.md quotes.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
from pathlib import Path


def start(pid: int, out: Path, rate: int = 250) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy")
    if exe is None:
        print("py-spy is not installed (pip install py-spy): no profile")
        return None
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            str(rate),
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    proc.send_signal(2)  # SIGINT: py-spy writes its output and exits
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _file(frame: str) -> str:
    where = frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0]
    parts = Path(where).parts
    if "stomp_proto" in parts:
        return "/".join(parts[parts.index("stomp_proto") :])
    return parts[-2] + "/" + parts[-1] if len(parts) >= 2 else where


def _name(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"
    func, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    return f"{func} ({Path(where).name})" if where else func


def summary(path: Path, top: int = 15) -> str:
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    by_file: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_name(f) for f in stack.split(";")]
        # Idle: the event loop waiting in select/epoll, or a thread pool's
        # worker waiting for work (py-spy samples it as if it ran).
        if frames and (
            "select (selectors.py)" in frames[-1]
            or "poll" in frames[-1]
            or frames[-1] == "_worker (thread.py)"
        ):
            idle += n
            continue
        total += n
        self_time[frames[-1]] += n
        by_file[_file(stack.rsplit(";", 1)[-1])] += n
        for f in set(frames):
            inclusive[f] += n
    if not total:
        return "(no samples)"
    lines = [
        f"{total} busy samples (shares below are of these), {idle} idle (epoll, pool threads)",
        "self time by file:",
    ]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in by_file.most_common(12)]
    lines.append("self time:")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in self_time.most_common(top)]
    lines.append("inclusive time:")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top + 10)]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(summary(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 15))
