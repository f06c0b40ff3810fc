"""``verify_packet``: the Decision Packet checks of ``gatehouse verify``, offline."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .audit.packet import PACKET_VERSION, check_packet, conclusion
from .models import Check, Packet

__all__ = ["verify_packet", "PacketReport"]


class PacketReport(BaseModel):
    """The result of :func:`verify_packet`, in the shape of ``gatehouse
    verify --json``: ``verified`` only if every check passed."""

    model_config = ConfigDict(frozen=True)

    verified: bool
    summary: str
    checks: list[Check]

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.ok]

    def check(self, name: str) -> Check | None:
        """The check of that name, if it ran."""
        return next((c for c in self.checks if c.name == name), None)


def verify_packet(packet: Packet | Mapping[str, Any] | str | bytes, *, log_key: str | Path) -> PacketReport:
    """Checks a Decision Packet offline against the log key you trust.

    ``packet`` is the packet as :meth:`Gatehouse.packet` returns it, its
    JSON text, or the parsed JSON. ``log_key`` is the log's verifier key
    (``gatehouse log key``; obtain it out of band, never from the packet),
    or a :class:`~pathlib.Path` to a file holding it.

    Runs every check ``gatehouse verify`` runs — packet checksum and
    version, the checkpoint's signature, each entry's inclusion proof, the
    chain of entries and the rules each must follow, the record and its
    hash, the request, the status, the reviews and the review rule, the
    token's claims, receipts, outcomes and policy texts — and returns each
    (name, ok, detail). Never raises for a bad packet: a failure is a check.
    """
    key = log_key.read_text() if isinstance(log_key, Path) else log_key
    try:
        if isinstance(packet, Packet):
            parsed = packet
        elif isinstance(packet, (str, bytes)):
            parsed = Packet.model_validate_json(packet)
        else:
            parsed = Packet.model_validate(dict(packet))
    except (ValidationError, ValueError, TypeError) as e:
        checks = [Check(name="packet", ok=False, detail=f"not a {PACKET_VERSION} document: {_first_error(e)}")]
    else:
        checks = check_packet(parsed, key.strip())
    verified, summary = conclusion(checks)
    return PacketReport(verified=verified, summary=summary, checks=checks)


def _first_error(e: Exception) -> str:
    if isinstance(e, ValidationError):
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else str(err["msg"])
    return str(e)
