"""(b) Claim contention: K tabs send Pick up for one handoff at the same instant."""

from __future__ import annotations

import asyncio
import time

from bench.client import PICK_UP, Msg, close_tabs, open_tabs, quiet, redirects, toast_texts
from bench.infra import log
from bench.seed import BenchData
from bench.stats import summary

ANSWER_TIMEOUT = 30.0


def _answer(msg: Msg) -> bool:
    return bool(redirects(msg)) or any("Already claimed" in t for t in toast_texts(msg))


async def run_claims(
    url: str, data: BenchData, ks: list[int], rounds: int, budget_s: float = 1e9, min_rounds: int = 3
) -> list[dict]:
    claimers = data.add_engineers(max(ks), prefix="claimer")
    results = []
    for k in ks:
        people = claimers[:k]
        tabs = await open_tabs(url, [p.token for p in people], "/escalations")
        answer_times: list[float] = []
        winner_times: list[float] = []
        loser_times: list[float] = []
        clean_rounds = 0
        problems: list[str] = []
        msgs_per_tab: list[float] = []
        began = time.monotonic()
        done = 0
        try:
            for r in range(rounds):
                if done >= min_rounds and time.monotonic() - began > budget_s:
                    break
                done += 1
                handoff_id = await asyncio.to_thread(data.new_handoff)
                starts = [t.mark() for t in tabs]
                sent = await asyncio.gather(*(t.emit(PICK_UP, {"handoff_id": handoff_id}) for t in tabs))
                answers = await asyncio.gather(
                    *(
                        t.wait_for(_answer, start=s, timeout=ANSWER_TIMEOUT)
                        for t, s in zip(tabs, starts, strict=True)
                    )
                )
                winners = [i for i, m in enumerate(answers) if m is not None and redirects(m)]
                missing = [i for i, m in enumerate(answers) if m is None]
                ok = len(winners) == 1 and not missing
                if ok:
                    winner = people[winners[0]]
                    path = redirects(answers[winners[0]])[0]
                    ok = path.endswith(handoff_id)
                    for i, m in enumerate(answers):
                        if i != winners[0] and not any(winner.name in t for t in toast_texts(m)):
                            ok = False
                            problems.append(
                                f"K={k} round {r}: loser {i} not told the winner: {toast_texts(m)[:1]}"
                            )
                else:
                    problems.append(f"K={k} round {r}: winners={winners} unanswered={missing}")
                clean_rounds += ok
                for i, (m, t0) in enumerate(zip(answers, sent, strict=True)):
                    if m is None:
                        continue
                    answer_times.append(m.t - t0)
                    (winner_times if i in winners else loser_times).append(m.t - t0)
                # Let the "claimed" fan-out (every tab refreshes its queue) settle; after a
                # timeout, wait for the late answers too, so they are not taken for the next round's.
                await asyncio.sleep(0.05)
                await quiet(tabs, 1.0 if missing else 0.3, 30)
                msgs_per_tab.append(sum(len(t.messages) for t in tabs) / k)
        finally:
            await close_tabs(tabs)
        row = {
            "k": k,
            "rounds": done,
            "clean_rounds": clean_rounds,
            "messages_per_tab_per_round": round(sorted(msgs_per_tab)[len(msgs_per_tab) // 2], 1)
            if msgs_per_tab
            else None,
            "answer": summary(answer_times),
            "winner": summary(winner_times),
            "losers": summary(loser_times),
            "problems": problems[:5],
        }
        log(
            f"(b) K={k}: {clean_rounds}/{done} clean, answer p50 {row['answer']['p50_ms']} ms p95 {row['answer']['p95_ms']} ms"
        )
        results.append(row)
    return results
