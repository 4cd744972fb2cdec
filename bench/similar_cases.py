"""(d) The similar-case query at scale: the handoff screen's "Similar past cases" with 10k and
100k resolved cases in one account (PostgreSQL: tsvector, GIN, ts_rank).

`bench.queries.bulk_insert` grows Northwind with sessions whose text is "Bulk problem <n>";
here every picked-up one also becomes a resolved case with a realistic search document:
one of the demo's MSP problems (steps, notes, fix) with a step of another mixed in and its
own client and ticket number, so a new case's words match thousands of past cases a
little and a few hundred well, as on a real desk. Then three new escalations (through
the domain) are looked up as their screen does, for an admin (the whole account) and an
engineer (the team read rule joins the handoff).
"""

from __future__ import annotations

from sqlalchemy import text

from bench.infra import log
from bench.seed import BenchData

NEW_CASES = (
    (
        "Outlook says Trying to connect for the practice manager's mailbox",
        "Microsoft 365",
        [("Created a new Outlook profile", "Still disconnected"), ("Opened OWA", "Mailbox is fine there")],
        "Other people on that PC connect fine.",
    ),
    (
        "Home workers' VPN tunnel keeps dropping",
        "Network / VPN",
        [("Updated the VPN client", "Same drops"), ("Tried a phone hotspot", "Stable on the hotspot")],
        "All on the same broadband provider.",
    ),
    (
        "Blank pages when printing from the practice management app",
        "Printing",
        [("Printed a test page", "Fine"), ("Printed to PDF and then the PDF", "Fine")],
        "Vendor blames the printer.",
    ),
)


def _documents() -> list[tuple[int, str, str, str]]:
    """(n, title, fix, body) for every pair of demo problems: n = first * count + second."""
    from escalation_app.domain.demo_cases import CASES
    from escalation_app.domain.demo_history import PROBLEMS, _fix_text

    problems = [(p.summary, p.domain, p.steps, p.notes[0], _fix_text(p)) for p in PROBLEMS]
    problems += [(c.summary, c.domain, c.steps, c.notes, c.fix) for c in CASES]
    docs = []
    for i, (summary, domain, steps, notes, fix) in enumerate(problems):
        for j, other in enumerate(problems):
            extra = other[2][0]
            body = " ".join(f"{tried} {result}" for tried, result in (*steps, extra)) + " " + notes
            docs.append((i * len(problems) + j, f"{summary} {domain}", fix, body))
    return docs


def fill_case_index(data: BenchData) -> int:
    """Make every picked-up bulk session a resolved case with a search document (those not
    done yet); returns how many cases the account has."""
    docs = _documents()
    with data.engine.begin() as conn:
        conn.execute(
            text("CREATE TEMP TABLE bench_doc (n int, title text, fix text, body text) ON COMMIT DROP")
        )
        conn.execute(
            text("INSERT INTO bench_doc VALUES (:n, :title, :fix, :body)"),
            [{"n": n, "title": t, "fix": f, "body": b} for n, t, f, b in docs],
        )
        params = {"a": data.account.id, "k": len(docs)}
        conn.execute(
            text(
                """
                UPDATE support_session s SET resolution = d.fix, resolved_by_id = h.claimed_by_id,
                  resolved_at = h.claimed_at + make_interval(mins => 20 + (s.id * 37) % 900),
                  root_cause = 'configuration'
                FROM session_handoff h, bench_doc d
                WHERE h.session_id = s.id AND s.account_id = :a AND h.claimed_by_id IS NOT NULL
                  AND s.problem_summary LIKE 'Bulk problem %' AND s.resolution IS NULL
                  AND d.n = (s.id * 7919) % :k
                """
            ),
            params,
        )
        conn.execute(
            text(
                """
                INSERT INTO case_search (session_id, account_id, handoff_id, title, fix, body, escalated_at,
                                         resolved_at)
                SELECT s.id, s.account_id, h.id, d.title, d.fix,
                  left(s.client_name || ' ' || d.body || ' ticket ' || s.id, 8000), h.created_at, s.resolved_at
                FROM support_session s
                JOIN session_handoff h ON h.session_id = s.id
                JOIN bench_doc d ON d.n = (s.id * 7919) % :k
                WHERE s.account_id = :a AND s.resolved_at IS NOT NULL
                  AND s.problem_summary LIKE 'Bulk problem %'
                  AND NOT EXISTS (SELECT 1 FROM case_search c WHERE c.session_id = s.id)
                """
            ),
            params,
        )
        cases = conn.execute(
            text("SELECT count(*) FROM case_search WHERE account_id = :a"), {"a": data.account.id}
        ).scalar_one()
    with data.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE case_search"))
        conn.execute(text("VACUUM ANALYZE support_session"))
    return int(cases)


def _new_escalations(data: BenchData) -> list[str]:
    from escalation_app.domain.db import session_scope
    from escalation_app.domain.handoffs import create_handoff
    from escalation_app.domain.support_sessions import add_step, create_session

    actor = data.engineer.actor
    ids = []
    with session_scope(data.engine) as db:
        for summary, domain, steps, notes in NEW_CASES:
            s = create_session(db=db, actor=actor, problem_summary=summary, problem_domain=domain)
            for tried, result in steps:
                add_step(db=db, actor=actor, session_id=s.id, tried=tried, result=result)
            handoff = create_handoff(db=db, actor=actor, session_id=s.id, intent="escalate", notes=notes)
            # Picked up at once: no AI run wanted here, and the queue's size stays as (d) set it.
            handoff.ai_status = "not_needed"
            handoff.claimed_by_id = data.seniors[1].user_id
            handoff.claimed_at = handoff.created_at
            db.add(handoff)
            db.commit()
            ids.append(str(handoff.id))
    return ids


def run_similar_cases(data: BenchData, runs: int, timer, explain) -> dict:
    """Fill the index, then time `similar_cases.similar_to_handoff` for each new case and reader."""
    from escalation_app.domain import similar_cases
    from escalation_app.domain.db import session_scope
    from escalation_app.domain.similar_cases import case_terms

    cases = fill_case_index(data)
    if not hasattr(data, "similar_handoffs"):
        data.similar_handoffs = _new_escalations(data)
    readers = (("admin", data.seniors[0].actor), ("engineer", data.engineer.actor))
    out = {"cases": cases, "lookups": [], "explain": []}
    for (summary, domain, steps, notes), handoff_id in zip(NEW_CASES, data.similar_handoffs, strict=True):
        terms = case_terms(summary, domain, notes, *[f"{t} {r}" for t, r in steps])
        with data.engine.connect() as conn:
            candidates = conn.execute(
                text(
                    "SELECT count(*) FROM case_search WHERE account_id = :a AND search_vector @@ "
                    "websearch_to_tsquery('english'::regconfig, :q)"
                ),
                {"a": data.account.id, "q": " or ".join(terms)},
            ).scalar_one()
        for reader, actor in readers:

            def lookup(actor=actor, handoff_id=handoff_id):
                with session_scope(data.engine) as db:
                    return similar_cases.similar_to_handoff(db=db, actor=actor, handoff_id=handoff_id)

            shown = lookup()
            out["lookups"].append(
                {
                    "case": summary,
                    "reader": reader,
                    "terms": len(terms),
                    "candidates": int(candidates),
                    "shown": [c.problem_summary for c in shown],
                    "timing": timer(lookup, runs),
                }
            )
            if summary == NEW_CASES[0][0]:
                # The ranking and the details (the handoff's own reads are in the history rows).
                out["explain"] += [
                    dict(e, reader=reader) for e in explain(data, lookup) if "case_search" in e["sql"]
                ]
    log(
        f"(d) similar cases over {cases} resolved: "
        + "; ".join(
            f"{x['reader']} {x['case'][:24]!r} ({x['candidates']} candidates) p50 {x['timing']['p50_ms']} "
            f"p95 {x['timing']['p95_ms']} ms"
            for x in out["lookups"]
        )
    )
    return out
