"""How a wait of any length becomes server long-polls of at most 60 s."""

from __future__ import annotations

from collections.abc import Callable

from ._core import MAX_SERVER_WAIT

# A long-poll that came back pending sooner than this (a server shutting
# down answers at once) is followed by a pause, so a wait never spins.
MIN_POLL_INTERVAL = 1.0


class WaitPlan:
    """The long-polls of one ``wait_for``: each asks the server to wait the
    whole seconds left (at most 60); when less than a second is left, one
    last plain read ends the wait."""

    def __init__(self, timeout: float, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._deadline = clock() + max(0.0, timeout)
        self._started: float = clock()

    def next_wait(self) -> int | None:
        """Seconds for the next long-poll, or None for a plain read."""
        self._started = self._clock()
        whole = int(self._deadline - self._started)
        return min(whole, MAX_SERVER_WAIT) if whole >= 1 else None

    def done(self, wait: int | None) -> bool:
        """Whether the wait is over (after a plain read, or at the deadline)."""
        return wait is None or self._clock() >= self._deadline

    def pause(self) -> float:
        """How long to pause before the next long-poll."""
        elapsed = self._clock() - self._started
        left = self._deadline - self._clock()
        return max(0.0, min(MIN_POLL_INTERVAL - elapsed, left))
