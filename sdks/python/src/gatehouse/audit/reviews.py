"""A packet's reviews: each equal to its log entry, and an approved
decision's approvals meeting the review rule its record fixed (a port of
the server's ``packet::reviews``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hashing import raw_action_hash
from ..jcs import canonical_sha256_hex
from ..models import Packet
from ._serde import serde_value
from .state import DecisionState, Logged, LoggedReview

if TYPE_CHECKING:
    from .packet import Checks


def review_rule_check(c: Checks, packet: Packet, state: DecisionState) -> None:
    """The record's review rule is the one logged, and an approved
    decision's approvals meet it."""
    shown = None if packet.record.review_rule is None else serde_value(packet.record.review_rule)
    if shown != state.rule:
        c.add("review_rule", False, "the record's review rule is not the one its decision entry logged")
        return
    if state.rule is None:
        return
    rule = state.review_rule()
    tally = rule.tally(state.votes(), state.action_hash)
    missing = []
    if packet.status == "approved":
        for n, (req, t) in enumerate(zip(rule.requirements, tally.requirements)):
            if t.met:
                continue
            groups = " or ".join(req.groups) if req.groups else "any reviewer"
            who = f" ({', '.join(t.approvers)})" if t.approvers else ""
            missing.append(
                f"requirement {n + 1} ({groups}) has {len(t.approvers)} of {req.quorum} approvals "
                f"from eligible people{who}"
            )
    if packet.approved_action_hash is not None and packet.approved_action_hash != state.approved_action_hash:
        missing.append(f"approved_action_hash is not the {state.approved_action_hash} the approvals approved")
    needed = " and ".join(
        f"{r.quorum} of {'/'.join(r.groups) if r.groups else 'any reviewer'}" for r in rule.requirements
    )
    requester = rule.requester or "unnamed"
    c.all(
        "review_rule",
        missing,
        f"the decision needed {needed} and its reviews are judged by it: distinct eligible people, "
        f"none of them the requester ({requester})",
    )


def _comment_hash(comment: str) -> str:
    return "sha256:" + canonical_sha256_hex(comment)


def reviews_check(packet: Packet, logged: list[Logged[LoggedReview]]) -> list[str]:
    """What differs between the packet's reviews and their log entries."""
    shown = packet.reviews
    wrong = []
    if len(shown) != len(logged):
        wrong.append(f"the packet shows {len(shown)} reviews; the log has {len(logged)}")
    for r, entry in zip(shown, logged):
        item = entry.item
        fields = []
        if r.index != entry.index:
            fields.append("index")
        if r.decision != item.decision:
            fields.append("decision")
        if r.reviewer_key_id != item.reviewer:
            fields.append("reviewer_key_id")
        # A version 2 entry records the name ("" for none); version 1 none.
        if item.reviewer_name is not None:
            name_ok = (r.reviewer_name or "") == item.reviewer_name
        else:
            name_ok = r.reviewer_name is None
        if not name_ok:
            fields.append("reviewer_name")
        if (None if r.comment is None else _comment_hash(r.comment)) != item.comment_hash:
            fields.append("comment")
        if r.reviewed_at != entry.ts:
            fields.append("reviewed_at")
        if r.person != item.person:
            fields.append("person")
        if r.groups != item.groups:
            fields.append("groups")
        if r.action_hash != item.action_hash:
            fields.append("action_hash")
        if r.amended_payload is not None and packet.request is not None:
            digest = raw_action_hash(packet.request.tool_name, packet.request.subject, r.amended_payload)
            if digest != item.action_hash:
                fields.append("amended_payload")
        if fields:
            wrong.append(f"the review shown for entry {entry.index} differs from it in: {', '.join(fields)}")
    return wrong
