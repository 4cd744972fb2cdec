"""Optional py-spy sampling of the backend while a bench runs (BENCH_PYSPY=1)."""

from __future__ import annotations

import collections
import shutil
import subprocess
from pathlib import Path

from bench.infra import log

BENCH_DIR = Path(__file__).resolve().parent


def start(pid: int, name: str, duration: int) -> subprocess.Popen | None:
    exe = shutil.which("py-spy") or str(Path(__import__("sys").executable).parent / "py-spy")
    if not Path(exe).exists():
        log("py-spy not installed; skipping the profile")
        return None
    out = BENCH_DIR / f"profile-{name}.txt"
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--format",
            "raw",
            "--rate",
            "200",
            "--duration",
            str(duration),
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.terminate()


IDLE_LEAVES = (
    "EpollSelector.select",
    "_worker (concurrent/futures/thread.py:81)",
    "Condition.wait",
    "Event.wait",
    "Queue.get",
    "Popen.poll",
    "Popen.wait",
)
GENERIC = (
    "threading.py",
    "runners.py",
    "base_events.py",
    "events.py",
    "multiprocessing",
    "granian",
    "click/core.py",
    "reflex/reflex.py",
    "reflex/utils/exec.py",
    "<module>",
    "concurrent/futures/thread.py",
    "contextlib.py",
)


def summarize(name: str, top: int = 30) -> dict:
    """Share of busy samples per function, inclusive (py-spy --format raw collapsed stacks)."""
    path = BENCH_DIR / f"profile-{name}.txt"
    if not path.exists():
        return {}
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f.strip()]
        total += n
        if not frames or any(frames[-1].startswith(x) or x in frames[-1] for x in IDLE_LEAVES):
            idle += n
            continue
        own[frames[-1]] += n
        for f in set(frames):
            if (
                not f.startswith("process ")
                and not f.startswith("thread ")
                and not any(g in f for g in GENERIC)
            ):
                inclusive[f] += n
    busy = max(1, total - idle)
    return {
        "samples": total,
        "idle_samples": idle,
        "top_inclusive": [(k, round(100 * v / busy, 1)) for k, v in inclusive.most_common(top)],
        "top_self": [(k, round(100 * v / busy, 1)) for k, v in own.most_common(15)],
    }
