"""`python -m escalation_app.seed`: load the demo data once (safe to run again)."""

from escalation_app.domain.db import session_scope
from escalation_app.domain.demo_data import load_demo_data


def main() -> None:
    with session_scope() as db:
        created = load_demo_data(db)
    print("Demo data loaded." if created else "Demo data already present.")


if __name__ == "__main__":
    main()
