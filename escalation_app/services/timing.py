"""Opt-in timestamps of the escalate click and its live push, for `make bench` part (f).

Off unless the server runs with ESCALATION_TIMING=1. Then each stage logs one line,
`timing <stage> <key=value ...> <epoch seconds>`, which the bench reads from the server's
output to split click → card time into server time (handler start → commit → push sent)
and browser time. Off, a stamp costs one boolean check.
"""

from __future__ import annotations

import logging
import os
import time

ENABLED = os.environ.get("ESCALATION_TIMING") == "1"
logger = logging.getLogger(__name__)


def stamp(stage: str, **keys: object) -> None:
    """Log that `stage` was reached now (only with ESCALATION_TIMING=1)."""
    if ENABLED:
        fields = " ".join(f"{k}={v}" for k, v in keys.items())
        logger.info("timing %s %s %.6f", stage, fields, time.time())
