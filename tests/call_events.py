"""One recorder of CTI events for the tests: a :class:`CallListener` that keeps every
:class:`CallEvent` it gets (lane threads append) and lets the test thread read and wait."""

from __future__ import annotations

import threading
from typing import Callable, Iterable, List, Tuple

from asterisk_cti.model import CallEvent, CallListener


class CallEvents(CallListener):
    """Every CTI event delivered to it, in delivery order."""

    def __init__(self) -> None:
        self.events: List[CallEvent] = []
        self.cond = threading.Condition()

    def on_call_event(self, event: CallEvent) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def mark(self) -> int:
        """How many events arrived so far (a ``since`` for the readers below)."""
        with self.cond:
            return len(self.events)

    def all(self) -> List[CallEvent]:
        """A copy of the events so far."""
        with self.cond:
            return list(self.events)

    def of(self, line: str, since: int = 0, noise: Iterable[str] = ()) -> List[CallEvent]:
        """The events at ``line`` (after the first ``since``), without the kinds in ``noise``."""
        skip = frozenset(noise)
        with self.cond:
            return [e for e in self.events[since:]
                    if e.line == line and e.kind.value not in skip]

    def kinds(self, line: str, noise: Iterable[str] = ("line_state_changed",)) -> List[str]:
        """The kinds of the events at ``line``, without those in ``noise``."""
        return [e.kind.value for e in self.of(line, noise=noise)]

    def wait(self, kind: str, line: str, pred: Callable[[CallEvent], bool] = lambda e: True,
             since: int = 0, timeout: float = 5.0) -> CallEvent:
        """The first event of ``kind`` at ``line`` (after ``since``) for which ``pred`` holds,
        waiting for it up to ``timeout`` seconds; fails the test when none comes."""
        def find() -> List[CallEvent]:
            return [e for e in self.events[since:]
                    if e.kind.value == kind and e.line == line and pred(e)]

        with self.cond:
            assert self.cond.wait_for(find, timeout), (kind, line, self.events[since:])
            return find()[0]


def kind_and_id(events: Iterable[CallEvent]) -> List[Tuple[str, str]]:
    """``(kind, connection id)`` of each event: what an order comparison looks at."""
    return [(e.kind.value, e.connection_id) for e in events]
