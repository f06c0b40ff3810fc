"""Who must approve a decision and whether its reviews meet that, and
whether a redemption or receipt may follow what the log says: ports of the
server's ``review_rule`` and ``rules`` modules, which the server, its log
verifier and its packet verifier all share. Timestamps are RFC 3339."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Vote", "ReviewRule", "Tally", "unix", "unix_ms"]

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def _parse(ts: str) -> tuple[int, int] | None:
    """(Unix seconds, nanoseconds) of an RFC 3339 time, or None."""
    m = _RFC3339.fullmatch(ts)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    try:
        if day > calendar.monthrange(year, month)[1]:
            return None
    except ValueError:  # year 0, which Python's calendar does not know
        return None
    seconds = calendar.timegm((year, month, day, hour, minute, min(second, 59), 0, 0, 0))
    if m.group(9):
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        seconds -= offset if m.group(9) == "+" else -offset
    fraction = (m.group(7) or "")[:9].ljust(9, "0")
    return seconds, int(fraction)


def unix(ts: str) -> int | None:
    """RFC 3339 to Unix seconds."""
    parsed = _parse(ts)
    return None if parsed is None else parsed[0]


def unix_ms(ts: str) -> int | None:
    """RFC 3339 to Unix milliseconds."""
    parsed = _parse(ts)
    return None if parsed is None else parsed[0] * 1000 + parsed[1] // 1_000_000


@dataclass(frozen=True)
class Vote:
    """One review as the rule sees it."""

    key: str
    identity: str
    groups: list[str]
    choice: str
    action_hash: str
    at_ms: int


@dataclass
class Requirement:
    groups: list[str]
    quorum: int
    escalate_to: str | None = None
    escalate_at: str | None = None

    def escalate_at_ms(self) -> int | None:
        return None if self.escalate_at is None else unix_ms(self.escalate_at)

    def admits(self, groups: list[str], at_ms: int) -> bool:
        if not self.groups:
            return True
        when = self.escalate_at_ms()
        escalated = self.escalate_to if self.escalate_to is not None and when is not None and at_ms >= when else None
        return any(g in self.groups or g == escalated for g in groups)


@dataclass
class RequirementTally:
    approvers: list[str]
    met: bool


@dataclass
class Tally:
    outcome: str | None
    """``approved`` or ``rejected`` once the reviews decide; None while more are needed."""
    current_action_hash: str
    requirements: list[RequirementTally] = field(default_factory=list)


@dataclass
class ReviewRule:
    requester: str
    requirements: list[Requirement]

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ReviewRule:
        return cls(
            requester=value["requester"],
            requirements=[
                Requirement(r["groups"], r["quorum"], r.get("escalate_to"), r.get("escalate_at"))
                for r in value["requirements"]
            ],
        )

    @classmethod
    def legacy(cls) -> ReviewRule:
        """Decisions recorded before rules: any reviewer, one approval."""
        return cls("", [Requirement([], 1)])

    def admits(self, groups: list[str], at_ms: int) -> bool:
        return any(r.admits(groups, at_ms) for r in self.requirements)

    def eligible_groups(self, at_ms: int) -> list[str]:
        groups: list[str] = []
        for r in self.requirements:
            if not r.groups:
                return []
            groups.extend(r.groups)
            when = r.escalate_at_ms()
            if r.escalate_to is not None and when is not None and at_ms >= when:
                groups.append(r.escalate_to)
        return sorted(set(groups))

    def check(self, requester_key: str, prior: list[Vote], vote: Vote) -> str | None:
        """Why ``vote`` may not follow ``prior``, or None when it may."""
        if vote.key == requester_key or (self.requester and vote.identity == self.requester):
            return "the requester may not review their own request"
        if not self.admits(vote.groups, vote.at_ms):
            eligible = ", ".join(self.eligible_groups(vote.at_ms))
            return f"{vote.identity} is not in a group that may review this request (eligible: {eligible})"
        if vote.choice == "approve":
            current = self.tally(prior, vote.action_hash).current_action_hash
            again = any(
                p.identity == vote.identity
                and p.choice == "approve"
                and p.action_hash == vote.action_hash
                and vote.action_hash == current
                for p in prior
            )
            if again:
                return f"{vote.identity} has already approved this action; one person counts once"
        return None

    def tally(self, votes: list[Vote], proposed: str) -> Tally:
        current = next((v.action_hash for v in reversed(votes) if v.choice == "approve"), proposed)
        requirements = []
        for r in self.requirements:
            approvers: list[str] = []
            for v in votes:
                counts = v.choice == "approve" and v.action_hash == current and r.admits(v.groups, v.at_ms)
                if counts and v.identity not in approvers:
                    approvers.append(v.identity)
            requirements.append(RequirementTally(approvers, len(approvers) >= r.quorum))
        if any(v.choice == "reject" for v in votes):
            outcome: str | None = "rejected"
        elif votes and all(r.met for r in requirements):
            outcome = "approved"
        else:
            outcome = None
        return Tally(outcome, current, requirements)
