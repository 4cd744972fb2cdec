"""Similar past cases: the resolved cases of an account most like the one at hand.

Every resolved case that was handed off has a search document (`CaseSearch`): its problem
summary and domain, what fixed it, and the rest (client, steps tried with their results,
every handoff's notes). `index_case` writes it in the resolve transaction
(`casework.resolve_case`); a resolved session can no longer change (no steps, no
handoffs), so the document stays current without further writes.

A new case is compared with them through each database's own full-text engine (migration
0013): PostgreSQL matches its stored tsvector through a GIN index and ranks with
`ts_rank`; SQLite matches its FTS5 table and ranks with `bm25()`. The new case's words are
OR-ed (any shared word makes a candidate; the ranking sorts them), so a case described
differently still turns up. Only resolved cases of the same account, never the case
itself; the handoff screen adds the reader's own read rule (`handoffs.readable_handoffs`),
the AI prompt the cases every reader of the handoff may open.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import humanize
from sqlalchemy import func, literal_column, or_, table
from sqlmodel import Session, col, select

from escalation_app.domain.actors import Actor
from escalation_app.domain.handoffs import load_handoff, readable_handoffs
from escalation_app.domain.models import (
    CaseSearch,
    HandoffIntent,
    HandoffOutcome,
    SessionHandoff,
    SessionStep,
    SupportSession,
    User,
)

SHOWN = 3
FIX_EXCERPT = 300
# A case scoring below this share of the best one is left out: when one past case clearly
# is the same problem, cases that merely share a word or two ("printer", "Outlook") are
# noise next to it. (A share of each engine's own score, so the same rule on both.)
RELATIVE_SCORE_MIN = 0.25
# How many of the newest cases sharing a word with the new one are ranked (see `_ranked_ids`).
RANKED_MAX = 2000
TITLE_MAX = 300
FIX_MAX = 2000
BODY_MAX = 8000
# The new case's words that are looked for (the summary's first, then domain, notes, steps):
# enough for any real description, and a bounded query however long the session is.
TERMS_MAX = 40
TERM_MAX = 40

# Words that say nothing about which problem it is: English function words (PostgreSQL's
# english configuration drops them too; SQLite's FTS5 has no stop list) and words every
# support session uses.
_STOP_WORDS = """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can cannot could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in into is
    it its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them themselves
    then there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your yours yourself yourselves
    still tried checked check trying try works working worked fine ok okay issue issues problem
    problems error errors user users customer customers says said see seen get gets got getting
    done didn doesn don isn wasn won via per every one two three since yet already
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())
_WORD = re.compile(r"[^\W_]+")


def case_terms(*texts: str | None) -> list[str]:
    """The distinct searchable words of `texts`, in order of first appearance (at most TERMS_MAX).

    Letters and digits only (so nothing a person types can be read as query syntax by
    either engine), lower-cased, without stop words, single characters and numbers
    shorter than three digits.
    """
    seen: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall((text or "").lower()):
            if len(word) < 2 or len(word) > TERM_MAX or word in STOP_WORDS:
                continue
            if word.isdigit() and len(word) < 3:
                continue
            seen.setdefault(word, None)
            if len(seen) >= TERMS_MAX:
                return list(seen)
    return list(seen)


# ---------------------------------------------------------------------------- the documents


def _bounded(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


def _document(
    *, summary: str, domain: str, client: str, steps: Iterable[SessionStep], notes: Iterable[str], fix: str
) -> tuple[str, str, str]:
    """(title, fix, body): what the full-text index reads, each bounded.

    Migration 0013's backfill builds the same three columns in SQL.
    """
    step_text = " ".join(f"{s.tried} {s.result}" for s in steps)
    note_text = " ".join(n for n in notes if n)
    return (
        _bounded(f"{summary} {domain}", TITLE_MAX),
        _bounded(fix, FIX_MAX),
        _bounded(f"{client} {step_text} {note_text}", BODY_MAX),
    )


def _steps_by_session(db: Session, session_ids: Sequence[int]) -> dict[int, list[SessionStep]]:
    out: dict[int, list[SessionStep]] = {sid: [] for sid in session_ids}
    for step in db.exec(
        select(SessionStep)
        .where(col(SessionStep.session_id).in_(session_ids))
        .order_by(col(SessionStep.session_id), col(SessionStep.position))
    ).all():
        out[step.session_id].append(step)
    return out


def _handoffs_by_session(db: Session, session_ids: Sequence[int]) -> dict[int, list[SessionHandoff]]:
    out: dict[int, list[SessionHandoff]] = {sid: [] for sid in session_ids}
    for handoff in db.exec(
        select(SessionHandoff)
        .where(col(SessionHandoff.session_id).in_(session_ids))
        .order_by(col(SessionHandoff.session_id), col(SessionHandoff.created_at))
    ).all():
        out[handoff.session_id].append(handoff)
    return out


def _row(
    support_session: SupportSession,
    resolved: SessionHandoff,
    steps: list[SessionStep],
    handoffs: list[SessionHandoff],
    resolved_at: datetime,
) -> CaseSearch:
    title, fix, body = _document(
        summary=support_session.problem_summary,
        domain=support_session.problem_domain,
        client=support_session.client_name,
        steps=steps,
        notes=(h.engineer_notes for h in handoffs),
        fix=support_session.resolution or "",
    )
    escalations = [h.created_at for h in handoffs if h.intent == HandoffIntent.ESCALATE]
    return CaseSearch(
        session_id=support_session.id,
        account_id=support_session.account_id,
        handoff_id=resolved.id,
        title=title,
        fix=fix,
        body=body,
        escalated_at=min(escalations or [h.created_at for h in handoffs] or [resolved.created_at]),
        resolved_at=resolved_at,
    )


def index_case(db: Session, support_session: SupportSession, resolved: SessionHandoff) -> CaseSearch:
    """Write the search document of a session just resolved, in the caller's transaction.

    `resolved` is the handoff that ended with the fix (the link "similar past cases"
    opens). Reads the session's steps and handoffs as they are in this transaction.
    """
    assert support_session.id is not None and support_session.resolved_at is not None
    db.flush()
    steps = _steps_by_session(db, [support_session.id])[support_session.id]
    handoffs = _handoffs_by_session(db, [support_session.id])[support_session.id]
    row = _row(support_session, resolved, steps, handoffs, support_session.resolved_at)
    existing = db.get(CaseSearch, support_session.id)
    if existing is not None:
        db.delete(existing)
        db.flush()
    db.add(row)
    db.flush()
    return row


def index_resolved_sessions(db: Session, session_ids: Sequence[int]) -> int:
    """Write the documents of sessions resolved by bulk inserts (demo data), in the caller's
    transaction; sessions without a resolved handoff are skipped. Returns how many."""
    written = 0
    for start in range(0, len(session_ids), 500):
        chunk = list(session_ids[start : start + 500])
        sessions = db.exec(select(SupportSession).where(col(SupportSession.id).in_(chunk))).all()
        steps = _steps_by_session(db, chunk)
        handoffs = _handoffs_by_session(db, chunk)
        for support_session in sessions:
            ended = [h for h in handoffs[support_session.id] if h.outcome == HandoffOutcome.RESOLVED]
            if support_session.resolved_at is None or not ended:
                continue
            db.merge(
                _row(
                    support_session,
                    ended[-1],
                    steps[support_session.id],
                    handoffs[support_session.id],
                    support_session.resolved_at,
                )
            )
            written += 1
    db.flush()
    return written


# ---------------------------------------------------------------------------- finding them


@dataclass(frozen=True, slots=True)
class SimilarCase:
    """One resolved case like the one at hand: what it was, who fixed it, how, how fast."""

    handoff_id: str
    session_id: int
    problem_summary: str
    problem_domain: str
    client_name: str
    fixed_by_name: str
    fix: str
    root_cause: str | None
    escalated_at: datetime
    resolved_at: datetime

    @property
    def reference(self) -> str:
        """How the screen and the AI prompt name the case: "#1234" (its session)."""
        return f"#{self.session_id}"

    @property
    def fix_excerpt(self) -> str:
        """What fixed it, cut for a list (the case itself shows all of it)."""
        text = " ".join(self.fix.split())
        return text if len(text) <= FIX_EXCERPT else text[: FIX_EXCERPT - 1].rstrip() + "…"

    @property
    def time_to_fix(self) -> timedelta:
        """From its first escalation to the fix."""
        return max(timedelta(0), self.resolved_at - self.escalated_at)

    @property
    def time_to_fix_text(self) -> str:
        """ "3 hours", "2 days"."""
        return humanize.naturaldelta(self.time_to_fix)


def _ranked_ids(
    db: Session,
    *,
    account_id: int,
    terms: list[str],
    exclude_session_id: int | None,
    scope: list,
    limit: int,
) -> list[tuple[int, float]]:
    """(session id, score) of the best matching resolved cases, best first (each database's
    engine; higher scores are better on both).

    Only the newest RANKED_MAX cases sharing a word are ranked: ranking every match costs a
    score per match (at 100,000 cases a common word matches most of them), while finding
    the newest matches walks an index and stops early.
    """
    conditions = [CaseSearch.account_id == account_id]
    if exclude_session_id is not None:
        conditions.append(CaseSearch.session_id != exclude_session_id)

    def scoped(statement):
        if not scope:
            return statement
        return statement.join(SessionHandoff, col(SessionHandoff.id) == CaseSearch.handoff_id).where(*scope)

    if db.get_bind().dialect.name == "postgresql":
        # The OR of the words: websearch_to_tsquery reads "or" between words as |, stems each
        # word and drops stop words; it never fails on what it is given.
        query = func.websearch_to_tsquery(literal_column("'english'::regconfig"), " or ".join(terms))
        vector = literal_column("case_search.search_vector")
        newest = (
            scoped(
                select(CaseSearch.session_id, CaseSearch.resolved_at, vector.label("search_vector")).where(
                    vector.op("@@")(query), *conditions
                )
            )
            .order_by(col(CaseSearch.session_id).desc())
            .limit(RANKED_MAX)
            .subquery()
        )
        # No length normalisation (0): documents are bounded, and dividing by length lifted
        # a three-word case sharing one word above a detailed match.
        score = func.ts_rank(newest.c.search_vector, query, literal_column("0"))
        statement = select(newest.c.session_id, score).order_by(
            score.desc(), newest.c.resolved_at.desc(), newest.c.session_id.desc()
        )
    else:
        fts_rowid = literal_column("case_search_fts.rowid")
        # Quoted words OR-ed: FTS5 reads each as a plain term (stemmed by the porter tokenizer).
        match = literal_column("case_search_fts").op("MATCH")(" OR ".join(f'"{term}"' for term in terms))

        def matching(*columns):
            return scoped(
                select(*columns)
                .select_from(table("case_search_fts"))
                .join(CaseSearch, CaseSearch.session_id == fts_rowid)
                .where(match, *conditions)
            )

        # FTS5 walks its index newest rowid (= session id) first and stops at the bound.
        bound = db.exec(
            matching(fts_rowid).order_by(fts_rowid.desc()).offset(RANKED_MAX - 1).limit(1)
        ).first()
        # bm25 weights per column (title, fix, body); it is negative, smaller is better.
        score = -func.bm25(
            literal_column("case_search_fts"),
            literal_column("4.0"),
            literal_column("2.0"),
            literal_column("1.0"),
        )
        statement = matching(CaseSearch.session_id, score).order_by(
            score.desc(), col(CaseSearch.resolved_at).desc(), col(CaseSearch.session_id).desc()
        )
        if bound is not None:
            statement = statement.where(fts_rowid >= bound)
    return [(session_id, float(value or 0.0)) for session_id, value in db.exec(statement.limit(limit)).all()]


def _load_cases(db: Session, session_ids: list[int]) -> list[SimilarCase]:
    if not session_ids:
        return []
    rows = db.exec(
        select(CaseSearch, SupportSession, User.display_name)
        .join(SupportSession, col(SupportSession.id) == CaseSearch.session_id)
        .outerjoin(User, col(User.id) == SupportSession.resolved_by_id)
        .where(col(CaseSearch.session_id).in_(session_ids))
    ).all()
    by_id = {
        doc.session_id: SimilarCase(
            handoff_id=str(doc.handoff_id),
            session_id=doc.session_id,
            problem_summary=s.problem_summary,
            problem_domain=s.problem_domain or "",
            client_name=s.client_name or "",
            fixed_by_name=name or "Unknown",
            fix=s.resolution or "",
            root_cause=s.root_cause,
            escalated_at=doc.escalated_at,
            resolved_at=doc.resolved_at,
        )
        for doc, s, name in rows
    }
    return [by_id[sid] for sid in session_ids if sid in by_id]


def find_similar(
    db: Session,
    *,
    account_id: int,
    texts: Sequence[str | None],
    exclude_session_id: int | None = None,
    scope: list | None = None,
    limit: int = SHOWN,
) -> list[SimilarCase]:
    """The resolved cases of `account_id` most like `texts`, best first, at most `limit`.

    `scope`: further conditions on the resolved handoff (`SessionHandoff`), e.g. a
    reader's read rule. The caller decides who may see what.
    """
    terms = case_terms(*texts)
    if not terms or limit < 1:
        return []
    ranked = _ranked_ids(
        db,
        account_id=account_id,
        terms=terms,
        exclude_session_id=exclude_session_id,
        scope=scope or [],
        limit=limit,
    )
    best = ranked[0][1] if ranked else 0.0
    return _load_cases(db, [sid for sid, score in ranked if score >= best * RELATIVE_SCORE_MIN])


def _case_texts(db: Session, handoff: SessionHandoff, support_session: SupportSession) -> list[str]:
    """What describes the case at hand: summary, domain, the notes, the steps, the client."""
    steps = _steps_by_session(db, [support_session.id])[support_session.id]
    texts = [support_session.problem_summary, support_session.problem_domain, handoff.engineer_notes]
    texts += [f"{s.tried} {s.result}" for s in steps]
    texts.append(support_session.client_name)
    return texts


def similar_to_handoff(
    *, db: Session, actor: Actor, handoff_id: str | uuid.UUID, limit: int = SHOWN
) -> list[SimilarCase]:
    """The resolved cases most like this handoff's, for its screen: only those the actor may
    open (`readable_handoffs`), never the handoff's own session. A handoff the actor may
    not read is NotFound."""
    handoff = load_handoff(db, actor, handoff_id)
    support_session = db.get(SupportSession, handoff.session_id)
    assert support_session is not None
    # The first condition is the account, which the document carries itself; the rest
    # (an engineer's team and party rule) need the resolved handoff joined.
    scope = readable_handoffs(actor)[1:]
    return find_similar(
        db,
        account_id=actor.account_id,
        texts=_case_texts(db, handoff, support_session),
        exclude_session_id=support_session.id,
        scope=scope,
        limit=limit,
    )


def queue_scope(team_id: int | None) -> list:
    """Cases every reader of a handoff of `team_id` may open: its team's and team-less ones
    (an engineer reads their team's queue and the team-less one)."""
    if team_id is None:
        return [col(SessionHandoff.team_id).is_(None)]
    return [or_(col(SessionHandoff.team_id).is_(None), SessionHandoff.team_id == team_id)]


def similar_for_assessment(
    db: Session, handoff: SessionHandoff, texts: Sequence[str | None], limit: int = SHOWN
) -> list[SimilarCase]:
    """The resolved cases the AI assessment of `handoff` may draw on (and cite): the most
    like `texts` among those every reader of the handoff may open."""
    return find_similar(
        db,
        account_id=handoff.account_id,
        texts=texts,
        exclude_session_id=handoff.session_id,
        scope=queue_scope(handoff.team_id),
        limit=limit,
    )
