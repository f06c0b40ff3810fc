"""A decision's state derived from its log entries alone: a port of the
server's ``state::derive`` (and the redemption and receipt rules it applies
to every entry), with the same problems reported in the same words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .entries import EntryError, LogEntry, parse_entry
from .merkle import leaf_hash
from .rules import ReviewRule, Vote, unix, unix_ms

__all__ = ["DecisionState", "Logged", "LoggedReview", "derive"]

T = TypeVar("T")

_INITIAL = {"allow": "allow", "reject": "reject", "pending_review": "pending_review"}
PERMITTING = ("allow", "approved")
REDEEMED = "the token was already redeemed"


@dataclass
class Logged(Generic[T]):
    index: int
    ts: str
    item: T


@dataclass
class LoggedReview:
    decision: str
    reviewer: str
    reviewer_name: str | None
    comment_hash: str | None
    person: str | None
    groups: list[str] | None
    action_hash: str | None

    def vote(self, proposed: str, ts: str) -> Vote:
        at = unix_ms(ts)
        # The person, else the key's name, else the key id (an empty name counts as a name).
        if self.person is not None:
            identity = self.person
        elif self.reviewer_name is not None:
            identity = self.reviewer_name
        else:
            identity = self.reviewer
        return Vote(
            key=self.reviewer,
            identity=identity,
            groups=list(self.groups or []),
            choice=self.decision,
            action_hash=self.action_hash if self.action_hash is not None else proposed,
            at_ms=at if at is not None else -(2**63),
        )


@dataclass
class DecisionState:
    decision_id: str
    index: int
    created_at: str
    verdict: str
    record_hash: str
    leaf_hash: str
    action_hash: str
    policy_version: str
    created_by: str
    rule: dict[str, Any] | None
    """The review rule as the decision entry logged it (server JSON shape)."""
    status: str
    chained: bool
    last: tuple[int, str]
    approved_action_hash: str
    resolved: Logged[None] | None = None
    reviews: list[Logged[LoggedReview]] = field(default_factory=list)
    escalations: list[Logged[str]] = field(default_factory=list)
    token: Logged[dict[str, Any]] | None = None
    redemptions: list[Logged[dict[str, Any]]] = field(default_factory=list)
    executions: list[Logged[dict[str, Any]]] = field(default_factory=list)
    outcomes: list[Logged[dict[str, Any]]] = field(default_factory=list)
    flags: list[Logged[str]] = field(default_factory=list)

    def votes(self) -> list[Vote]:
        return [r.item.vote(self.action_hash, r.ts) for r in self.reviews]

    def review_rule(self) -> ReviewRule:
        return ReviewRule.from_json(self.rule) if self.rule is not None else ReviewRule.legacy()


def derive(decision_id: str, entries: list[tuple[int, bytes]]) -> tuple[DecisionState | None, list[str]]:
    """Derives the state of ``decision_id`` from its entries (index, exact
    leaf bytes), in log order. Every problem is named with its entry's index."""
    problems: list[str] = []
    state: DecisionState | None = None
    for index, data in entries:
        try:
            entry = parse_entry(data)
        except EntryError as e:
            problems.append(f"log entry {index}: {e}")
            continue
        if entry.id != decision_id:
            problems.append(f"log entry {index} is about {entry.id}, not {decision_id}")
            continue
        digest = leaf_hash(data).hex()
        if state is None:
            first = _first(index, entry, digest)
            if isinstance(first, str):
                problems.append(first)
            else:
                state = first
            continue
        if entry.prev is not None and entry.prev != state.last[1]:
            problems.append(
                f"log entry {index} does not follow entry {state.last[0]} "
                "(an entry about the decision is missing or was replaced)"
            )
        elif entry.prev is None and state.chained:
            problems.append(
                f"log entry {index} names no previous entry although the decision's entries are chained"
            )
        state.last = (index, digest)
        why = _apply(state, index, entry)
        if why is not None:
            problems.append(f"log entry {index}: {why}")
    if state is None and not problems:
        problems.append(f"no log entry records decision {decision_id}")
    return state, problems


def _first(index: int, entry: LogEntry, digest: str) -> DecisionState | str:
    if entry.type != "decision":
        return f"log entry {index} ({entry.type}) comes before the decision's own entry"
    f = entry.fields
    return DecisionState(
        decision_id=entry.id,
        index=index,
        created_at=entry.ts,
        verdict=f["verdict"],
        record_hash=f["record_hash"],
        leaf_hash=digest,
        action_hash=f["action_hash"],
        policy_version=f["policy_version"],
        created_by=f["created_by"],
        rule=f["review_rule"],
        status=_INITIAL[f["verdict"]],
        chained=entry.v >= 2,
        last=(index, digest),
        approved_action_hash=f["action_hash"],
    )


def _apply(s: DecisionState, index: int, entry: LogEntry) -> str | None:
    """Applies one entry to the state; returns why it may not follow, if so."""
    ts, f, kind = entry.ts, entry.fields, entry.type
    when = unix(ts)
    if kind == "decision":
        return "a second decision entry"
    if kind == "review":
        return _review(s, index, ts, f)
    if kind == "escalation":
        if s.status != "pending_review":
            return f"an escalation of a decision that is {s.status}"
        at = unix_ms(ts)
        rule = s.review_rule() if s.rule is not None else None
        scheduled = False
        for q in rule.requirements if rule is not None else []:
            due = q.escalate_at_ms()
            if q.escalate_to == f["group"] and due is not None and at is not None and at >= due:
                scheduled = True
        if not scheduled:
            return f"an escalation to {f['group']} that the decision's rule does not schedule by then"
        s.escalations.append(Logged(index, ts, f["group"]))
    elif kind == "expiry":
        if s.status != "pending_review":
            return f"an expiry of a decision that is {s.status}"
        s.status = "expired"
        s.resolved = Logged(index, ts, None)
    elif kind == "token_issued":
        if s.status not in PERMITTING:
            return f"a token for a decision that is {s.status}"
        if s.token is not None:
            return "a second approval token"
        s.token = Logged(index, ts, dict(f))
    elif kind == "token_redeemed":
        why = redemption_refusal(s, f["jti"], when)
        if why is not None:
            return why
        s.redemptions.append(Logged(index, ts, dict(f)))
    elif kind == "execution":
        why = receipt_refusal(s, f["action_hash"], f["token_jti"], when)
        if why is not None:
            return f"receipt {f['execution_id']} should have been refused: {why}"
        s.executions.append(Logged(index, ts, dict(f)))
    elif kind == "outcome":
        s.outcomes.append(Logged(index, ts, dict(f)))
    elif kind == "flag":
        s.flags.append(Logged(index, ts, f["reason"]))
    else:
        return f"a {kind} entry is not about a decision"
    return None


def _review(s: DecisionState, index: int, ts: str, f: dict[str, Any]) -> str | None:
    if s.status != "pending_review":
        return f"a review of a decision that is {s.status}"
    review = LoggedReview(
        decision=f["decision"],
        reviewer=f["reviewer"],
        reviewer_name=f["reviewer_name"],
        comment_hash=f["comment_hash"],
        person=f["person"],
        groups=f["groups"],
        action_hash=f["action_hash"],
    )
    prior = s.votes()
    vote = review.vote(s.action_hash, ts)
    if s.rule is not None:
        if review.person is None or review.groups is None or review.action_hash is None:
            return "a review of a decision with a review rule names no person, groups or action"
        refusal = s.review_rule().check(s.created_by, prior, vote)
        if refusal is not None:
            return f"a review that should have been refused: {refusal}"
    s.reviews.append(Logged(index, ts, review))
    tally = s.review_rule().tally([*prior, vote], s.action_hash)
    resolves = f["resolves"]
    if resolves is not None and resolves != (tally.outcome is not None):
        claim = "left pending" if tally.outcome is not None else "resolved"
        return f"a review that claims it {claim} the decision, which its rule says it does not"
    if tally.outcome is not None:
        s.status = tally.outcome
        s.resolved = Logged(index, ts, None)
        if tally.outcome == "approved":
            s.approved_action_hash = tally.current_action_hash
    return None


def redemption_refusal(s: DecisionState, jti: str, at: int | None) -> str | None:
    """Why a redemption of token ``jti`` at ``at`` may not follow, or None."""
    if s.status not in PERMITTING:
        return f"decision {s.decision_id} is {s.status}"
    if s.token is None:
        return "no approval token was issued for the decision"
    if s.token.item["jti"] != jti:
        return "this is not the token issued for the decision"
    if any(r.item["jti"] == jti for r in s.redemptions):
        return REDEEMED
    exp = unix(s.token.item["exp"])
    if at is not None and exp is not None and at < exp:
        return None
    return f"the token expired at {s.token.item['exp']}"


def receipt_refusal(s: DecisionState, action_hash: str, token_jti: str | None, at: int | None) -> str | None:
    """Why a receipt may not follow, or None. A receipt after the approval
    token expired is refused whether or not it names the token."""
    if s.status not in PERMITTING:
        return f"the decision is {s.status}, so no action was authorised"
    if action_hash != s.approved_action_hash:
        return f"the executed action ({action_hash}) is not the approved one ({s.approved_action_hash})"
    issued = s.token.item if s.token is not None else None
    if token_jti is not None and (issued is None or issued["jti"] != token_jti):
        return f"token {token_jti} was not issued for this decision"
    if issued is not None:
        exp = unix(issued["exp"])
        if not (at is not None and exp is not None and at <= exp):
            return f"the receipt comes after the approval token expired at {issued['exp']}"
    return None
