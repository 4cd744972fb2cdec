"""The opt-in timing stamps, as `make bench` part (f) reads them back from the server's log."""

from __future__ import annotations

import logging
import uuid

from bench.browser import server_stamps
from escalation_app.services import timing


def _log_stamps(caplog, monkeypatch, tmp_path, enabled: bool):
    monkeypatch.setattr(timing, "ENABLED", enabled)
    handoff = uuid.uuid4()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    with caplog.at_level(logging.INFO, logger=timing.__name__):
        timing.stamp("click-start", path="/sessions/7")
        timing.stamp("click-commit", path="/sessions/7", handoff=handoff)
        timing.stamp("click-answer", path="/sessions/7")
        timing.stamp("push-start", kind="created", handoff=handoff)
        timing.stamp("push-sent_push_queue", kind="created", handoff=handoff)
        timing.stamp("push-sent_emit", kind="claimed", handoff=handoff)
    log = tmp_path / "server.log"
    log.write_text("".join(formatter.format(r) + "\n" for r in caplog.records) + "unrelated line\n")
    return str(handoff), server_stamps(log)


def test_stamps_off_by_default_log_nothing(caplog, monkeypatch, tmp_path):
    _, stamps = _log_stamps(caplog, monkeypatch, tmp_path, enabled=False)
    assert stamps == {}


def test_the_bench_reads_every_stage_of_one_escalation_in_order(caplog, monkeypatch, tmp_path):
    handoff, stamps = _log_stamps(caplog, monkeypatch, tmp_path, enabled=True)
    row = stamps[handoff]
    stages = ["click-start", "click-commit", "click-answer", "push-start", "push-sent_push_queue"]
    assert list(row) == stages
    times = [row[s] for s in stages]
    assert times == sorted(times)
    # A claim's push for the same handoff is not taken for the escalation's.
    assert "push-sent_emit" not in row
