"""`python -m escalation_app.seed`: load the demo data once (safe to run again)."""

from escalation_app.domain.db import session_scope
from escalation_app.domain.demo_cases import load_demo_cases
from escalation_app.domain.demo_clock import load_demo_clock
from escalation_app.domain.demo_data import load_demo_data
from escalation_app.domain.demo_history import load_demo_history


def main() -> None:
    with session_scope() as db:
        created = load_demo_data(db)
        # 90 days of Northwind history, so History and Analytics are worth a look.
        history = load_demo_history(db)
        # Resolved cases like the demo's open handoffs, for their "Similar past cases".
        load_demo_cases(db)
        # A snoozed park and one that woke up (breached escalations come with the history).
        load_demo_clock(db)
    print("Demo data loaded." if created else "Demo data already present.")
    if history:
        print(f"Demo history loaded: {history} handoffs.")


if __name__ == "__main__":
    main()
