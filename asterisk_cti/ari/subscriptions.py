"""Which event sources the client wants, and how to make Asterisk agree on every connect.

The desired set holds monitored endpoints (``PJSIP/1000``) and technologies (``PJSIP``: every
endpoint of it, with no per-extension dialplan). On every (re)connect, :meth:`Subscriptions.sync`
compares it with ``GET /applications/{app}`` and subscribes only what is missing, because
Asterisk reference-counts subscriptions (subscribing twice needs two unsubscribes) and
overlapping sources (``endpoint:PJSIP`` plus ``endpoint:PJSIP/1000``) duplicate every event.
It then subscribes ``bridge:`` (all bridges: endpoint subscriptions carry no bridge events on
Asterisk 22, and ``bridge:`` never survives a disconnect) and installs the server-side event
filter as a *disallowed* list: every known ARI event type the client does not need. A type a
later Asterisk adds still arrives (and is filtered client-side), and so do the ones an
*allowed* list would wrongly block (ApplicationReplaced, StasisStart/StasisEnd).

A source Asterisk does not know (``1000`` instead of ``PJSIP/1000``, a deleted endpoint) is a
permanent ``422 "Event source does not exist"``, and Asterisk stops at the first such source
of a request (the ones before it are subscribed, the ones after it are not). The SDK then
subscribes the remaining sources one by one, so one bad source never costs the others, and
remembers the refused ones in :attr:`Subscriptions.refused`; it never raises for them on a
(re)connect, which would only reconnect for ever. ``start()`` and ``monitor()`` turn them
into an :class:`~asterisk_cti.errors.UnknownSourceError`.

Threads: :meth:`add`/:meth:`remove` from any thread (they take effect at once when connected);
:meth:`sync` on the processor thread.
"""

from __future__ import annotations

import logging
import threading
from typing import AbstractSet, Any, Iterable, List, Mapping, NamedTuple, Tuple

from ..errors import AriHttpError, ConfigurationError, NotFoundError, UnknownSourceError
from ..events.catalogue import ARI_EVENT_TYPES
from .resources import Ari
from .rest import AriRest

logger = logging.getLogger(__name__)

#: How ``GET /applications/{app}`` lists a ``bridge:`` (all bridges) subscription: Asterisk
#: 22's res/stasis/app.c names it after its topic; an empty id is accepted too.
_ALL_BRIDGES = frozenset({"__AST_BRIDGE_ALL_TOPIC", ""})

#: Types the client always needs, whatever listeners ask for.
ALWAYS_WANTED = frozenset({"ApplicationReplaced", "StasisStart", "StasisEnd"})


def normalize_source(source: str) -> str:
    """``endpoint:PJSIP/1000`` or ``PJSIP/1000`` -> ``PJSIP/1000``; ``PJSIP`` stays.

    :raises ConfigurationError: for anything that is not an endpoint or a technology.
    """
    text = source.strip() if isinstance(source, str) else ""
    if text.startswith("endpoint:"):
        text = text[len("endpoint:"):]
    tech, _, res = text.partition("/")
    # ARI takes a comma-separated list of sources: a comma would subscribe more than asked
    # (``PJSIP/1000,bridge:`` is every bridge); whitespace and control characters are never
    # part of an endpoint name.
    if not tech or not tech.replace("_", "").replace("-", "").isalnum() or "/" in res or (
        _ and not res
    ) or any(c == "," or c.isspace() or not c.isprintable() for c in res):
        raise ConfigurationError(
            "monitor", f"{source!r} is not an endpoint (PJSIP/1000) or a technology (PJSIP)"
        )
    return f"{tech}/{res}" if res else tech


class SyncResult(NamedTuple):
    """What :meth:`Subscriptions.sync` did."""

    subscribed: Tuple[str, ...]
    unsubscribed: Tuple[str, ...]
    filter_installed: bool


class Subscriptions:
    """The desired event sources of one application, kept in step with Asterisk.

    :param app: the ARI application name.
    :param subscribe_bridges: also subscribe ``bridge:`` (all bridges).
    :param server_filter: install the server-side event filter.
    """

    def __init__(self, app: str, *, subscribe_bridges: bool = True, server_filter: bool = True):
        self.app = app
        self._subscribe_bridges = subscribe_bridges
        self._server_filter = server_filter
        self._lock = threading.Lock()
        self._wanted: List[str] = []
        self._refused: Tuple[str, ...] = ()
        self.filter_supported = True

    # -- the desired set ---------------------------------------------------------------------

    def add(self, sources: Iterable[str]) -> List[str]:
        """Add sources to the desired set.

        :returns: the normalized sources that were new.
        :raises ConfigurationError: for a malformed source.
        """
        new = [normalize_source(s) for s in sources]
        with self._lock:
            added = [s for s in dict.fromkeys(new) if s not in self._wanted]
            self._wanted.extend(added)
        return added

    def remove(self, sources: Iterable[str]) -> List[str]:
        """Remove sources from the desired set.

        :returns: the normalized sources that were removed.
        """
        gone = [normalize_source(s) for s in sources]
        with self._lock:
            removed = [s for s in dict.fromkeys(gone) if s in self._wanted]
            self._wanted = [s for s in self._wanted if s not in removed]
        return removed

    @property
    def wanted(self) -> Tuple[str, ...]:
        """The desired endpoints and technologies, in the order they were added."""
        with self._lock:
            return tuple(self._wanted)

    @property
    def refused(self) -> Tuple[str, ...]:
        """The wanted sources Asterisk refused as unknown at the last sync (422)."""
        with self._lock:
            return self._refused

    def refused_error(self, sources: Iterable[str] = ()) -> UnknownSourceError:
        """An :class:`UnknownSourceError` naming ``sources`` (default: :attr:`refused`)."""
        names = tuple(sources) or self.refused
        return UnknownSourceError("POST", f"/applications/{self.app}/subscription", 422,
                                  "Event source does not exist", names)

    def server_sources(self) -> List[str]:
        """The event sources to hold on the server: technologies, and endpoints whose
        technology is not monitored as a whole (overlap would duplicate every event)."""
        wanted = self.wanted
        techs = {w for w in wanted if "/" not in w}
        out = [f"endpoint:{w}" for w in wanted if "/" not in w]
        out += [f"endpoint:{w}" for w in wanted if "/" in w and w.split("/", 1)[0] not in techs]
        return out

    # -- talking to Asterisk -------------------------------------------------------------------

    def sync(self, rest: AriRest, needed_types: AbstractSet[str]) -> SyncResult:
        """Make Asterisk hold exactly the sources we want; install the event filter.

        Called after every (re)connect. A source that cannot be unsubscribed is logged and
        left (it only costs traffic).

        :param rest: the REST client.
        :param needed_types: every event type the client consumes (listeners and call model).
        :returns: what changed.
        :raises AriHttpError: when Asterisk refuses (the caller reconnects and retries); not
            for unknown sources, which are left out and listed in :attr:`refused`.
        """
        missing, extra = self._reconcile(rest, strict=False)
        installed = False
        if self._server_filter:
            installed = self.install_filter(rest, needed_types)
        return SyncResult(tuple(missing), tuple(extra), installed)

    def apply_change(self, rest: AriRest) -> None:
        """Subscribe/unsubscribe at once after :meth:`add` / :meth:`remove` while connected.

        Computed against the server's current state, so that it is safe to call any time.

        :raises AriHttpError: when Asterisk refuses a subscription or an unsubscription
            (unknown sources are not raised: they are listed in :attr:`refused`).
        """
        self._reconcile(rest, strict=True)

    def _reconcile(self, rest: AriRest, strict: bool) -> Tuple[List[str], List[str]]:
        """Compare the desired sources with ``GET /applications/{app}``; subscribe what is
        missing (``bridge:`` included) and unsubscribe what is no longer wanted.

        :param strict: raise when an unsubscription fails, instead of logging it.
        :returns: the sources subscribed and unsubscribed.
        """
        try:
            current = Ari(rest).applications.get(self.app)
        except NotFoundError:
            current = {}
        have = set(_held_endpoint_sources(current))
        want = self.server_sources()
        missing = [s for s in want if s not in have]
        extra = [s for s in sorted(have) if s not in want]
        if self._subscribe_bridges and not set(_ids(current, "bridge_ids")) & _ALL_BRIDGES:
            missing.append("bridge:")
        refused: List[str] = []
        if missing:
            refused = self._subscribe(rest, missing)
            missing = [s for s in missing if s not in refused]
            if missing:
                logger.info("subscribed %s to %s", self.app, ", ".join(missing))
        names = tuple(s[len("endpoint:"):] if s.startswith("endpoint:") else s for s in refused)
        with self._lock:
            self._refused = names
        if names:
            logger.error("Asterisk does not know the event source(s) %s; monitoring the others",
                         ", ".join(names))
        if extra:
            try:
                Ari(rest).applications.unsubscribe(self.app, extra)
                logger.info("unsubscribed %s from %s", self.app, ", ".join(extra))
            except AriHttpError as exc:
                if strict:
                    raise
                logger.warning("could not unsubscribe %s: %s", ", ".join(extra), exc)
        return missing, extra

    def _subscribe(self, rest: AriRest, sources: List[str]) -> List[str]:
        """Subscribe ``sources``; after a 422 (an unknown source: Asterisk stopped there),
        subscribe those still missing one by one.

        :returns: the sources Asterisk refused as unknown.
        :raises AriHttpError: for any other refusal.
        """
        try:
            Ari(rest).applications.subscribe(self.app, sources)
            return []
        except UnknownSourceError as exc:
            logger.info("subscribing %s one by one after: %s", ", ".join(sources), exc)
        try:
            current = Ari(rest).applications.get(self.app)
        except NotFoundError:
            current = {}
        have = set(_held_endpoint_sources(current))
        if set(_ids(current, "bridge_ids")) & _ALL_BRIDGES:
            have.add("bridge:")
        refused: List[str] = []
        for source in sources:
            if source in have:
                continue
            try:
                Ari(rest).applications.subscribe(self.app, [source])
            except UnknownSourceError:
                refused.append(source)
        return refused

    def install_filter(self, rest: AriRest, needed_types: AbstractSet[str]) -> bool:
        """``PUT eventFilter`` with every known type outside ``needed_types`` disallowed.

        :returns: True when the server accepted it; False when it refused (an Asterisk older
            than 13.26/16.3): the client then filters everything itself.
        """
        keep = set(needed_types) | ALWAYS_WANTED
        disallowed = [t for t in ARI_EVENT_TYPES if t not in keep]
        try:
            Ari(rest).applications.set_event_filter(self.app, disallowed=disallowed)
        except AriHttpError as exc:
            if self.filter_supported:
                logger.warning("server-side event filter refused (%s); filtering client-side",
                               exc)
            self.filter_supported = False
            return False
        self.filter_supported = True
        return True


def _ids(app: Mapping[str, Any], key: str) -> List[str]:
    value = app.get(key)
    return [str(v) for v in value] if isinstance(value, list) else []


def _held_endpoint_sources(app: Mapping[str, Any]) -> List[str]:
    # Asterisk lists endpoint subscriptions as "PJSIP/1000"; a whole technology as "PJSIP"
    # (some versions "PJSIP/"): normalise both to our spelling.
    out = []
    for ident in _ids(app, "endpoint_ids"):
        ident = ident[:-1] if ident.endswith("/") else ident
        if ident:
            out.append(f"endpoint:{ident}")
    return out
