"""A queue card's response clock, ticking in the browser.

The server sends the deadline instant once (with the card); the browser counts down
to it every second and changes colour by itself: green, amber in the last quarter of
the target, red once breached ("Breached 4 min ago"). No server round-trip per tick;
a reconnect re-reads the cards, and with them the same instants.
"""

from __future__ import annotations

import reflex as rx
from reflex.vars.base import Var

from escalation_app.domain.clock import WARN_FRACTION

CLOCK_JS = r"""
function escalationDeskMinutes(minutes) {
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

// Python's ISO instants carry microseconds; keep milliseconds, which every parser reads.
function escalationDeskInstant(iso) {
  return Date.parse(String(iso || "").replace(/(\.\d{3})\d+/, "$1"));
}

function ResponseClock({ dueAt, startAt }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  const due = escalationDeskInstant(dueAt);
  if (Number.isNaN(due)) return null;
  const start = escalationDeskInstant(startAt);
  const total = Math.max(due - (Number.isNaN(start) ? due : start), 1000);
  const left = due - now;
  let state = "ok";
  let text;
  if (left <= 0) {
    state = "breached";
    const ago = Math.floor(-left / 60000);
    text = ago < 1 ? "Breached just now" : `Breached ${escalationDeskMinutes(ago)} ago`;
  } else {
    if (left <= total * WARN_FRACTION) state = "warn";
    const minutes = Math.floor(left / 60000);
    text = minutes >= 1 ? `${escalationDeskMinutes(minutes)} left` : `${Math.ceil(left / 1000)} s left`;
  }
  const colours = { ok: "var(--green-11)", warn: "var(--amber-11)", breached: "var(--red-11)" };
  return jsx(
    "span",
    {
      className: "response-clock",
      "data-state": state,
      role: "timer",
      title: `Pick up by ${new Date(due).toLocaleString()}`,
      style: {
        color: colours[state],
        fontWeight: 600,
        fontSize: "var(--font-size-1)",
        fontVariantNumeric: "tabular-nums",
      },
    },
    text,
  );
}
""".replace("WARN_FRACTION", str(WARN_FRACTION))


class ResponseClock(rx.Component):
    """Counts down to `due_at` (ISO instant) from `start_at`; renders nothing without a deadline."""

    tag = "ResponseClock"
    library = None

    due_at: Var[str]
    start_at: Var[str]

    def add_imports(self) -> dict:
        return {"react": ["useState", "useEffect"]}

    def add_custom_code(self) -> list[str]:
        return [CLOCK_JS]


response_clock = ResponseClock.create
