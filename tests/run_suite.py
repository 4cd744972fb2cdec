"""`make test`: the whole suite as two pytest runs side by side, so it fits in minutes.

The tests against the running app (tests/browser/, tests/security/) share one app server
and Chromium, build into the project's `.web` and must not run twice at once; they spend
most of their time waiting on the browser and the server. Everything else (domain on
SQLite and PostgreSQL, services, state, faults, migrations) needs neither. So the app
tests run in one process and the rest in another, at the same time: the rest streams to
the terminal, the app tests' output is kept in test-artifacts/app-tests.log and printed
when they finish. The exit status is the worse of the two.

Extra arguments go to both runs (e.g. `-x`, `-k name`). `pytest` alone still runs the
whole suite in one process.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_TESTS = ["tests/browser", "tests/security"]
ARTIFACTS = ROOT / "test-artifacts"


def main(argv: list[str]) -> int:
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "app-tests.log"
    started = time.monotonic()
    # Each run its own temporary directory and no shared cache: neither cleans up the other's.
    temp = Path(tempfile.mkdtemp(prefix="escalation-tests-"))
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    with log_path.open("w") as log:
        app = subprocess.Popen(
            [*pytest, f"--basetemp={temp / 'app'}", *APP_TESTS, *argv],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            print(f"App tests ({', '.join(APP_TESTS)}) running alongside; output in {log_path}", flush=True)
            ignore = [f"--ignore={path}" for path in APP_TESTS]
            rest = subprocess.call([*pytest, f"--basetemp={temp / 'rest'}", *ignore, *argv], cwd=ROOT)
            app_code = app.wait()
        finally:
            if app.poll() is None:
                app.terminate()
                app.wait(timeout=30)
            shutil.rmtree(temp, ignore_errors=True)
    print(f"\n===== app tests ({', '.join(APP_TESTS)}) =====", flush=True)
    sys.stdout.write(log_path.read_text())
    elapsed = time.monotonic() - started
    print(
        f"\n===== whole suite: rest exit {rest}, app tests exit {app_code}, {elapsed:.0f} s =====",
        flush=True,
    )
    # pytest's "no tests collected" (5) in one half is not a failure of the suite.
    codes = [code for code in (rest, app_code) if code != 5]
    return max(codes, default=5)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
