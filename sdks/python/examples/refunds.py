"""What both examples guard: a refund, and a stand-in for the payment
provider (a ledger in memory), so the examples run without one."""

from __future__ import annotations

import itertools

from pydantic import BaseModel

LEDGER: list[dict[str, object]] = []
"""Every refund paid, in order: what the tests check ran, and with what."""

_ids = itertools.count(1)


class RefundRequest(BaseModel):
    """The refund tool's arguments: money in minor units (cents), as the
    policies expect (Cedar has no floating point)."""

    customer_id: str
    amount: int
    currency: str = "usd"


def pay_refund(req: RefundRequest) -> str:
    """The side effect. Runs only inside a Gatehouse guard."""
    refund_id = f"re_{next(_ids)}"
    LEDGER.append({"id": refund_id, **req.model_dump()})
    return refund_id
