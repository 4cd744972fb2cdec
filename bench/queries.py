"""(d) Queries at scale: the queue, the history page, history search and similar past cases with
10k / 100k handoffs in one account."""

from __future__ import annotations

import time

from sqlalchemy import text

from bench.infra import log
from bench.seed import BenchData
from bench.stats import summary

QUEUE_UNCLAIMED = 150  # unclaimed cards in the account's queue (the rest are history)
# History searches (`q`), page 1. Bulk summaries are "Bulk problem <n>" and notes "Bulk notes
# for session <id>", so "problem 77" is in ~1.1% of summaries (77, 770-779, 7700-7799, ...),
# "zebra crossing" is in none and "bulk" is in (nearly) every one: the worst case, where the
# exact count has to read every row.
SEARCHES = (("some", "problem 77"), ("none", "zebra crossing"), ("every", "bulk"))


def bulk_insert(data: BenchData, total: int) -> None:
    """Grow Northwind to `total` handoffs (each with its own session), spread over ~2 years."""
    with data.engine.begin() as conn:
        have = conn.execute(
            text("SELECT count(*) FROM session_handoff WHERE account_id = :a"), {"a": data.account.id}
        ).scalar_one()
        add = total - have
        if add <= 0:
            return
        users = [data.engineer.user_id, *[p.user_id for p in data.seniors]]
        conn.execute(
            text(
                """
                WITH s AS (
                  INSERT INTO support_session (account_id, team_id, owner_id, problem_summary, problem_domain,
                    client_name, status, confidence_tier, handoff_count, created_at, updated_at)
                  SELECT :a, :t, :eng, 'Bulk problem ' || g, 'Network', 'Client ' || (g % 500),
                    'resolved', 'medium', 1,
                    now() - make_interval(secs => (g * 631) % 63072000), now()
                  FROM generate_series(1, :add) g
                  RETURNING id, created_at
                )
                INSERT INTO session_handoff (id, session_id, account_id, team_id, handed_off_by_id, intent,
                  priority, engineer_notes, snapshot, ai_status, checked_steps, ai_assessment_data,
                  claimed_by_id, claimed_at, created_at)
                SELECT gen_random_uuid(), s.id, :a, :t, :eng,
                  CASE WHEN s.id % 4 = 0 THEN 'park' ELSE 'escalate' END,
                  (ARRAY['low','normal','high','urgent'])[1 + s.id % 4],
                  'Bulk notes for session ' || s.id, '{"steps": []}'::jsonb, 'ready', '[]'::jsonb,
                  '{"confidence": "medium"}'::jsonb,
                  (ARRAY[:u1, :u2]::int[])[1 + s.id % 2], s.created_at + interval '7 minutes', s.created_at
                FROM s
                """
            ),
            {
                "a": data.account.id,
                "t": data.team.id,
                "eng": users[0],
                "add": add,
                "u1": users[1],
                "u2": users[2],
            },
        )
        # Keep a realistic open queue: the newest QUEUE_UNCLAIMED handoffs are unclaimed.
        conn.execute(
            text(
                """
                UPDATE session_handoff SET claimed_by_id = NULL, claimed_at = NULL
                WHERE id IN (SELECT id FROM session_handoff WHERE account_id = :a
                             ORDER BY created_at DESC LIMIT :q)
                """
            ),
            {"a": data.account.id, "q": QUEUE_UNCLAIMED},
        )
    with data.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE session_handoff"))
        conn.execute(text("VACUUM ANALYZE support_session"))


def _time(fn, runs: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _explain_calls(data: BenchData, fn) -> list[dict]:
    """Capture the SELECTs `fn` sends, then EXPLAIN (ANALYZE, BUFFERS) each one."""
    from sqlalchemy import event

    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(data.engine, "before_cursor_execute", capture)
    try:
        fn()
    finally:
        event.remove(data.engine, "before_cursor_execute", capture)
    out = []
    with data.engine.connect() as conn:
        for statement, parameters in seen:
            lines = [
                r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            ]
            plan = "\n".join(lines)
            out.append(
                {
                    "sql": " ".join(statement.split())[:300],
                    # "Index Scan using ix", "Index Only Scan using ix", "Bitmap Index Scan on ix".
                    "index_scans": sorted(
                        {ln.strip().split(" using ")[1].split(" ")[0] for ln in lines if " using " in ln}
                        | {
                            ln.split("Bitmap Index Scan on ")[1].split(" ")[0]
                            for ln in lines
                            if "Bitmap Index Scan on " in ln
                        }
                    ),
                    "seq_scan_on_handoff": "Seq Scan on session_handoff" in plan,
                    "execution_ms": next(
                        (ln.split(":")[1].strip() for ln in lines if ln.startswith("Execution Time")), ""
                    ),
                    "plan": plan,
                }
            )
    return out


def run_queries(data: BenchData, sizes: list[int], runs: int) -> list[dict]:
    from escalation_app.domain import handoffs as handoff_rules
    from escalation_app.domain.db import session_scope

    try:
        from escalation_app.domain import history as history_rules

        history_source = "escalation_app.domain.history.list_history (count + page 1 of 50)"
    except Exception as exc:  # pragma: no cover - the module is being written
        history_rules = None
        history_source = f"equivalent SELECT (history module not importable: {exc})"

    manager = data.seniors[0].actor  # Riley, an admin: the whole account's history
    results = []
    for size in sizes:
        t0 = time.monotonic()
        bulk_insert(data, size)
        log(f"(d) {size} handoffs inserted in {time.monotonic() - t0:.1f}s")

        def queue():
            with session_scope(data.engine) as db:
                return handoff_rules.get_queue(db=db, actor=manager)

        if history_rules is not None:

            def history():
                with session_scope(data.engine) as db:
                    return history_rules.list_history(
                        db=db, actor=manager, filters=history_rules.HistoryFilters()
                    )

            def history_deep(size=size):
                with session_scope(data.engine) as db:
                    return history_rules.list_history(
                        db=db, actor=manager, filters=history_rules.HistoryFilters(page=(size // 50) // 2)
                    )

            def searcher(q: str):
                def history_search():
                    with session_scope(data.engine) as db:
                        return history_rules.list_history(
                            db=db, actor=manager, filters=history_rules.HistoryFilters(q=q)
                        )

                return history_search

            searches = {name: (q, searcher(q)) for name, q in SEARCHES}
        else:
            searches = {}

            def _hist(offset: int):
                with data.engine.connect() as conn:
                    conn.execute(
                        text("SELECT count(*) FROM session_handoff WHERE account_id = :a"),
                        {"a": manager.account_id},
                    )
                    return conn.execute(
                        text(
                            "SELECT h.*, s.problem_summary, u.display_name FROM session_handoff h "
                            "JOIN support_session s ON s.id = h.session_id JOIN app_user u ON u.id = h.handed_off_by_id "
                            "WHERE h.account_id = :a ORDER BY h.created_at DESC, h.id DESC LIMIT 50 OFFSET :o"
                        ),
                        {"a": manager.account_id, "o": offset},
                    ).all()

            def history():
                return _hist(0)

            def history_deep(size=size):
                return _hist((size // 2 // 50) * 50)

        row = {
            "handoffs": size,
            "queue_cards": len(queue()),
            "queue": summary(_time(queue, runs)),
            "history_page1": summary(_time(history, runs)),
            "history_middle_page": summary(_time(history_deep, runs)),
            "history_source": history_source,
        }
        # EXPLAIN (ANALYZE) exactly the SQL each one sends.
        row["explain_queue"] = _explain_calls(data, queue)
        row["explain_history"] = _explain_calls(data, history)
        row["history_search"] = []
        for name, (q, search) in searches.items():
            row["history_search"].append(
                {"name": name, "q": q, "matches": search().total, "timing": summary(_time(search, runs))}
            )
            row[f"explain_search_{name}"] = _explain_calls(data, search)
        # The handoff screen's similar past cases (bench/similar_cases.py).
        from bench.similar_cases import run_similar_cases

        row["similar_cases"] = run_similar_cases(
            data, runs, lambda fn, n: summary(_time(fn, n)), _explain_calls
        )
        log(
            f"(d) {size}: queue p50 {row['queue']['p50_ms']} p95 {row['queue']['p95_ms']} ms; "
            f"history p50 {row['history_page1']['p50_ms']} p95 {row['history_page1']['p95_ms']} ms; "
            + "; ".join(
                f"search {s['q']!r} ({s['matches']} matches) p50 {s['timing']['p50_ms']} "
                f"p95 {s['timing']['p95_ms']} ms"
                for s in row["history_search"]
            )
        )
        results.append(row)
    return results
