"""Harness for call-control tests: a scripted Asterisk 22 (:class:`Pbx`) behind the public
fakes (:class:`~asterisk_cti.testing.FakeAsterisk`: its REST routes answer call control's
requests and push the events Asterisk would on the fake websocket), and a real, started
:class:`~asterisk_cti.CtiClient` whose own pipeline (reactor, processor, waiters, lanes) and
call control consume them."""

from __future__ import annotations

import itertools
import re
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

import pytest

from asterisk_cti.client import CtiClient
from asterisk_cti.control.calls import CallControl, ControlOptions
from asterisk_cti.events.catalogue import Event
from asterisk_cti.testing import FakeAsterisk
from asterisk_cti.testing.fake_ari import RecordedRequest

APP = "cti"
NOT_IN_STASIS = {"message": "Channel not in Stasis application"}
CAUSE = {"normal": 16, "busy": 17, "no_answer": 19, "congestion": 34, "failure": 38}


class Seen:
    """What the client's processor offered to call control, in its order (a tap on the
    client's waiters, the same hook call control's state is fed by)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.events: List[Dict[str, Any]] = []

    def __call__(self, item: object) -> None:
        if isinstance(item, Event):
            with self._cond:
                self.events.append(dict(item.raw))
                self._cond.notify_all()

    def wait_for(self, pred: Callable[[Dict[str, Any]], bool], timeout: float = 5.0) -> bool:
        """Block until the processor offered an event matching ``pred``."""
        with self._cond:
            return self._cond.wait_for(lambda: any(pred(e) for e in self.events), timeout)


class ModelCalls:
    """What call control told the client's call model (a spy around the real one)."""

    def __init__(self, client: CtiClient) -> None:
        self.held: List[Tuple[str, bool]] = []
        self.hints: Dict[str, Any] = {}
        set_held, model = client.set_held, client.model
        expect = model.expect

        def held(channel_id: str, value: bool, timeout: float = 5.0) -> None:
            self.held.append((channel_id, value))
            set_held(channel_id, value, timeout)

        def hint(channel_id: str, value: Any) -> None:
            self.hints[channel_id] = value
            expect(channel_id, value)

        client.set_held = held  # type: ignore[method-assign]
        model.expect = hint  # type: ignore[method-assign]


class Pbx:
    """Emulates what Asterisk 22 answers and emits for the requests call control sends: its
    routes are installed on the :class:`~asterisk_cti.testing.FakeAsterisk`'s REST fake, its
    events pushed on its websocket to :attr:`client` (a real client, started by the fixture).

    ``behaviour[endpoint]``: ``answer`` (default), ``busy``, ``noanswer``, ``ring`` (rings
    until :meth:`answer`/:meth:`fail`), ``silent`` (no event at all)."""

    def __init__(self, options: Optional[ControlOptions] = None) -> None:
        self.asterisk = FakeAsterisk()
        self.fake = self.asterisk.ari
        self.client = self.asterisk.client(self.asterisk.config(app=APP))
        self.seen = Seen()
        self.client.waiters.tap(self.seen)
        self.model = ModelCalls(self.client)
        if options is not None:
            self.client.control.configure(options)
        self._startup: Set[int] = set()
        self.lock = threading.RLock()
        self.channels: Dict[str, Dict[str, Any]] = {}
        self.stasis: Set[str] = set()
        self.bridges: Dict[str, List[str]] = {}
        self.behaviour: Dict[str, str] = {}
        self.app_args: Dict[str, List[str]] = {}
        self.seq = itertools.count(1)
        self.clock = itertools.count(1)
        self._install()

    # -- events -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the client (its pipeline and call control's switch)."""
        self.client.start()
        self.idle()
        # what the client asks at start-up (info, subscriptions, filter, resync) is not
        # call control's: the request helpers below list what came after
        with self.fake.lock:
            self._startup = {id(r) for r in self.fake.requests}

    def idle(self, timeout: float = 5.0) -> None:
        """Wait until the client processed every event and call control acted on it (its
        actions make the PBX push more events: until both are quiet)."""
        assert self.asterisk.settle(self.client, timeout, quiet=True), "client not idle"

    def emit(self, etype: str, **fields: Any) -> None:
        n = next(self.clock)  # a distinct timestamp each: the processor drops repeated frames
        event = {"type": etype, "application": APP,
                 "timestamp": f"2026-11-26T03:{n // 60 % 60:02d}:{n % 60:02d}."
                              f"{n // 3600 % 1000:03d}+0000", **fields}
        self.asterisk.push(event)

    def chan(self, cid: str) -> Dict[str, Any]:
        return dict(self.channels[cid])

    def bridge_json(self, bid: str) -> Dict[str, Any]:
        return {"id": bid, "technology": "simple_bridge", "bridge_type": "mixing",
                "bridge_class": "stasis", "channels": list(self.bridges.get(bid, []))}

    def new_channel(self, endpoint: str, cid: Optional[str] = None, state: str = "Down",
                    number: str = "", exten: str = "") -> str:
        cid = cid or f"1795665{next(self.seq):03d}.{next(self.seq)}"
        with self.lock:
            self.channels[cid] = {
                "id": cid, "name": f"{endpoint}-{next(self.seq):08x}", "state": state,
                "protocol_id": "", "caller": {"name": "", "number": number},
                "connected": {"name": "", "number": ""}, "accountcode": "",
                "dialplan": {"context": "from-internal", "exten": exten, "priority": 1,
                             "app_name": "", "app_data": ""},
                "creationtime": "2026-11-26T03:56:00.000+0000", "language": "en",
            }
        return cid

    def set_state(self, cid: str, state: str) -> None:
        with self.lock:
            self.channels[cid]["state"] = state
        self.emit("ChannelStateChange", channel=self.chan(cid))

    def enter_stasis(self, cid: str, args: List[str]) -> None:
        with self.lock:
            self.stasis.add(cid)
        self.emit("StasisStart", channel=self.chan(cid), args=args)

    def dialplan_call(self, endpoint: str, exten: str, args: List[str]) -> str:
        """A phone dials ``exten``; the dialplan sends it into Stasis(cti, *args)."""
        cid = self.new_channel(endpoint, state="Ring", number=endpoint.split("/")[-1],
                               exten=exten)
        self.emit("ChannelCreated", channel=self.chan(cid))
        self.enter_stasis(cid, args)
        return cid

    def observed_channel(self, endpoint: str, state: str = "Up") -> str:
        """A channel outside the application (a plain dialplan call on a monitored line)."""
        cid = self.new_channel(endpoint, state=state)
        self.emit("ChannelCreated", channel=self.chan(cid))
        return cid

    def answer(self, cid: str) -> None:
        """The phone of a ringing originated channel answers."""
        self.set_state(cid, "Up")
        self.emit("Dial", peer=self.chan(cid), dialstatus="ANSWER", dialstring="")
        args = self.app_args.pop(cid, None)
        if args is not None:
            self.enter_stasis(cid, args)

    def fail(self, cid: str, status: str, cause: int) -> None:
        self.emit("Dial", peer=self.chan(cid), dialstatus=status, dialstring="")
        self.destroy(cid, cause)

    def destroy(self, cid: str, cause: int = 16) -> None:
        with self.lock:
            if cid not in self.channels:
                return
            for bid, members in self.bridges.items():
                if cid in members:
                    members.remove(cid)
                    self.emit("ChannelLeftBridge", channel=self.chan(cid),
                              bridge=self.bridge_json(bid))
            if cid in self.stasis:
                self.stasis.discard(cid)
                self.emit("StasisEnd", channel=self.chan(cid))
            self.emit("ChannelDestroyed", channel=self.chan(cid), cause=cause,
                      cause_txt="Normal Clearing" if cause == 16 else "x")
            del self.channels[cid]

    def place_in_bridge(self, cid: str, bid: str) -> None:
        with self.lock:
            for other, members in self.bridges.items():
                if cid in members:
                    members.remove(cid)
                    self.emit("ChannelLeftBridge", channel=self.chan(cid),
                              bridge=self.bridge_json(other))
            self.bridges[bid].append(cid)
            self.emit("ChannelEnteredBridge", channel=self.chan(cid), bridge=self.bridge_json(bid))

    # -- routes ---------------------------------------------------------------------------------

    def requests(self, method: Optional[str] = None, prefix: str = "") -> List[RecordedRequest]:
        """The requests since the client started (see :meth:`start`)."""
        return [r for r in self.fake.calls(method, prefix) if id(r) not in self._startup]

    def hangups(self, cid: str) -> List[RecordedRequest]:
        return [r for r in self.requests("DELETE") if r.segments == ["channels", cid]]

    def originates(self) -> List[RecordedRequest]:
        return [r for r in self.requests("POST") if r.path == "/channels"]

    def paths(self, method: Optional[str] = None, prefix: str = "") -> List[str]:
        return [f"{r.method} {r.path}" for r in self.requests(method, prefix)]

    def _install(self) -> None:
        f = self.fake
        me = self

        @f.route("POST", r"/channels")
        def originate(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Any]:
            endpoint = q.params["endpoint"]
            cid = me.new_channel(endpoint, q.params.get("channelId"))
            body = me.chan(cid)
            behaviour = me.behaviour.get(endpoint, "answer")
            if behaviour == "silent":
                return 200, body
            me.emit("ChannelCreated", channel=me.chan(cid))
            if q.params.get("app"):
                me.app_args[cid] = q.params.get("appArgs", "").split(",")
            if behaviour == "busy":
                me.fail(cid, "BUSY", 17)
                return 200, body
            me.emit("Dial", peer=me.chan(cid), dialstatus="RINGING", dialstring="")
            me.set_state(cid, "Ringing")
            if behaviour == "noanswer":
                me.fail(cid, "NOANSWER", 19)
            elif behaviour == "answer":
                me.answer(cid)
                if "extension" in q.params:
                    me._dialplan_dial(cid, q.params["extension"])
            return 200, body

        def stasis_op(fn: Any = None) -> Any:
            def handler(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Any]:
                cid = m["id"]
                with me.lock:
                    if cid not in me.channels:
                        return 404, {"message": "Channel not found"}
                    if cid not in me.stasis:
                        return 409, NOT_IN_STASIS
                return fn(q, cid) if fn else (204, None)
            return handler

        for op in ("hold", "moh", "mute", "ring", "dtmf", "redirect", "variable"):
            f.route("POST", rf"/channels/(?P<id>[^/]+)/{op}")(stasis_op())
            f.route("DELETE", rf"/channels/(?P<id>[^/]+)/{op}")(stasis_op())

        def answer(q: RecordedRequest, cid: str) -> Tuple[int, Any]:
            if me.channels[cid]["state"] != "Up":
                me.set_state(cid, "Up")
            return 204, None
        f.route("POST", r"/channels/(?P<id>[^/]+)/answer")(stasis_op(answer))

        def cont(q: RecordedRequest, cid: str) -> Tuple[int, Any]:
            with me.lock:
                me.stasis.discard(cid)
            me.emit("StasisEnd", channel=me.chan(cid))
            return 204, None
        f.route("POST", r"/channels/(?P<id>[^/]+)/continue")(stasis_op(cont))

        def play(q: RecordedRequest, cid: str) -> Tuple[int, Any]:
            return 201, {"id": q.segments[-1], "media_uri": q.params.get("media"),
                         "target_uri": f"channel:{cid}", "state": "queued"}
        f.route("POST", r"/channels/(?P<id>[^/]+)/play/(?P<pb>[^/]+)")(stasis_op(play))

        @f.route("DELETE", r"/channels/(?P<id>[^/]+)")
        def hangup(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Any]:
            cid = m["id"]
            if cid not in me.channels:
                return 404, {"message": "Channel not found"}
            me.destroy(cid, CAUSE.get(q.params.get("reason", "normal"), 16))
            return 204, None

        @f.route("POST", r"/bridges")
        def create_bridge(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Any]:
            bid = q.params["bridgeId"]
            me.bridges[bid] = []
            return 200, me.bridge_json(bid)

        @f.route("POST", r"/bridges/(?P<id>[^/]+)/addChannel")
        def add_channel(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Any]:
            bid = m["id"]
            if bid not in me.bridges:
                return 404, {"message": "Bridge not found"}
            chans = q.params["channel"].split(",")
            for cid in chans:
                if cid not in me.channels:
                    return 400, {"message": "Channel not found"}
                if cid not in me.stasis:
                    return 422, NOT_IN_STASIS
            for cid in chans:
                me.place_in_bridge(cid, bid)
            return 204, None

        @f.route("POST", r"/bridges/(?P<id>[^/]+)/removeChannel")
        def remove_channel(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Any]:
            bid, cid = m["id"], q.params["channel"]
            with me.lock:
                if bid not in me.bridges:
                    return 404, {"message": "Bridge not found"}
                if cid not in me.bridges[bid]:
                    return 422, {"message": "Channel not in this bridge"}
                me.bridges[bid].remove(cid)
                me.emit("ChannelLeftBridge", channel=me.chan(cid), bridge=me.bridge_json(bid))
            return 204, None

        @f.route("POST", r"/bridges/(?P<id>[^/]+)/play/(?P<pb>[^/]+)")
        def bridge_play(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Any]:
            if m["id"] not in me.bridges:
                return 404, {"message": "Bridge not found"}
            return 201, {"id": m["pb"], "media_uri": q.params.get("media"), "state": "queued"}

        @f.route("DELETE", r"/bridges/(?P<id>[^/]+)")
        def destroy_bridge(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Any]:
            bid = m["id"]
            with me.lock:
                if bid not in me.bridges:
                    return 404, {"message": "Bridge not found"}
                for cid in list(me.bridges[bid]):
                    me.bridges[bid].remove(cid)
                    me.emit("ChannelLeftBridge", channel=me.chan(cid), bridge=me.bridge_json(bid))
                me.emit("BridgeDestroyed", bridge=me.bridge_json(bid))
                del me.bridges[bid]
            return 204, None

        f.respond("DELETE", r"/playbacks/(?P<id>[^/]+)", 204)

    def _dialplan_dial(self, caller: str, exten: str) -> None:
        peer = self.new_channel(f"PJSIP/{exten}")
        self.emit("ChannelCreated", channel=self.chan(peer))
        for status in ("", "RINGING", "ANSWER"):
            self.emit("Dial", caller=self.chan(caller), peer=self.chan(peer), dialstatus=status,
                      dialstring=exten)
        self.set_state(peer, "Up")

    def close(self) -> None:
        try:
            if self.client.running:
                self.idle()
        finally:
            self.client.stop()


@pytest.fixture
def control_options() -> ControlOptions:
    """The options :func:`control` is made with (a folder's conftest may override them)."""
    return ControlOptions(dial_timeout=5)


@pytest.fixture
def pbx(control_options: ControlOptions) -> Iterator[Pbx]:
    p = Pbx(control_options)
    p.start()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def control(pbx: Pbx) -> CallControl:
    return pbx.client.control


def answered_call(pbx: Pbx, control: CallControl) -> Tuple[str, str, str]:
    """A click-to-dial 1000 -> 1002, established: (agent, peer, bridge)."""
    call = control.originate("PJSIP/1000", "1002", wait_for="established", timeout=5)
    pbx.idle()
    assert call.peer_channel_id and call.bridge_id
    return call.channel_id, call.peer_channel_id, call.bridge_id
