"""pipeline/delivery.py: the listener registry, the named dispatch groups, raw routing, and
the rule that the server-side event filter has one owner (the processor thread)."""

from __future__ import annotations

import threading
from typing import Any, FrozenSet, List, Tuple

import pytest
import requests

from asterisk_cti import ChannelEventListener, ConnectionListener
from asterisk_cti.events.catalogue import Event, parse_event
from asterisk_cti.model import CallListener
from asterisk_cti.pipeline.delivery import (
    CALL,
    CHANNEL,
    RAW,
    Group,
    ListenerRegistry,
    RawRoute,
    Route,
    keep_types_only,
    nobody,
    raw_route,
)
from asterisk_cti.testing import FakeAsterisk

from .helpers import Recorder, chan, ev


class Both(ChannelEventListener, ConnectionListener):
    def __init__(self) -> None:
        self.got: List[str] = []

    def on_event(self, event: Event) -> None:
        self.got.append("event:" + event.type)

    def on_channel_created(self, event: Any) -> None:
        self.got.append("created")


def test_groups_are_a_named_type() -> None:
    assert [g.name for g in Group] == ["CHANNEL", "CALL", "RAW", "SNAPSHOT"]
    assert (CHANNEL, CALL, RAW) == (Group.CHANNEL, Group.CALL, Group.RAW)


def test_registry_delivers_by_group_and_removal_is_idempotent() -> None:
    reg = ListenerRegistry(None, CallListener)
    both = Both()
    assert reg.add(both)
    assert not reg.add(object())  # no listener kind: nothing registered
    assert [r.listener for r in reg.connection_listeners] == [both]
    event = parse_event(ev("ChannelCreated"))
    reg.deliver((CHANNEL, event))
    assert both.got == ["event:ChannelCreated", "created"]
    reg.remove(both)
    reg.remove(both)
    reg.deliver((CHANNEL, event))
    assert both.got == ["event:ChannelCreated", "created"]
    assert reg.connection_listeners == ()


def test_raw_route_follows_wants_and_always_passes_stasis_start() -> None:
    class Raw:
        pass

    a, b = Raw(), Raw()
    seen: List[Tuple[FrozenSet[str], RawRoute]] = []
    reg = ListenerRegistry(None, CallListener)
    reg.watch_raw(lambda types, route: seen.append((types, route)))
    assert seen[-1] == (frozenset(), nobody)
    reg.add_raw(a, ["StasisStart", "Dial"], {"x"}.__contains__)
    reg.add_raw(b, ["Dial"], None)
    types, route = seen[-1]
    assert types == {"StasisStart", "Dial"}
    assert route("StasisStart", ["new"]) == (a,)
    assert route("Dial", ["y"]) == (b,)
    assert route("Dial", ["y", "x"]) == (a, b)
    assert route("ChannelCreated", ["x"]) == ()
    reg.remove(b)
    assert seen[-1][0] == {"StasisStart", "Dial"} and seen[-1][1]("Dial", ["y"]) == ()
    assert raw_route(()) is nobody


def test_a_listener_that_only_keeps_types_is_routed_nothing() -> None:
    class Raw:
        pass

    keeper, app = Raw(), Raw()
    seen: List[Tuple[FrozenSet[str], RawRoute]] = []
    reg = ListenerRegistry(None, CallListener)
    reg.watch_raw(lambda types, route: seen.append((types, route)))
    reg.add_raw(keeper, ["StasisStart", "StasisEnd", "Dial"], keep_types_only)
    types, route = seen[-1]
    assert types == {"StasisStart", "StasisEnd", "Dial"}  # the processor keeps them
    assert isinstance(route, Route) and route.routed == frozenset()
    assert route("StasisStart", ["a"]) == () and route("Dial", ["a"]) == ()
    reg.add_raw(app, ["StasisStart"], {"a"}.__contains__)
    types, route = seen[-1]
    assert isinstance(route, Route) and route.routed == {"StasisStart"}
    assert route("StasisStart", ["new"]) == (app,)
    assert route("StasisEnd", ["a"]) == ()


def test_raw_delivery_goes_to_the_targets_the_route_chose() -> None:
    got: List[str] = []

    class Raw:
        def on_event(self, event: Event) -> None:
            got.append(event.type)

    reg = ListenerRegistry(None, CallListener)
    reg.deliver((RAW, (parse_event(ev("Dial")), (Raw(), Raw()))))
    assert got == ["Dial", "Dial"]


def test_event_filter_is_installed_by_the_processor_not_the_caller_or_a_listener(
        fake: FakeAsterisk, monkeypatch: pytest.MonkeyPatch) -> None:
    """add_raw_listener / remove_listener (even from the listener's own callback) never PUT
    the event filter themselves: the processor has its REST worker do it."""
    puts: List[Tuple[str, List[str]]] = []
    cond = threading.Condition()
    send = fake.ari.send

    def recording_send(request: requests.PreparedRequest, **kw: Any) -> requests.Response:
        resp = send(request, **kw)
        if request.method == "PUT" and "eventFilter" in (request.url or ""):
            with cond:
                app = fake.ari.app("cti-test")
                puts.append((threading.current_thread().name,
                             [d["type"] for d in app["events_disallowed"]]))
                cond.notify_all()
        return resp

    monkeypatch.setattr(fake.ari, "send", recording_send)
    got: List[str] = []

    class Once:
        def on_event(self, event: Event) -> None:
            got.append(event.type)
            client.remove_listener(self)  # on a lane thread

    client = fake.client(model=False)
    client.monitor("PJSIP/1000")
    with client.start():
        with cond:
            assert cond.wait_for(lambda: len(puts) == 1, 5)
            assert "ChannelUserevent" in puts[0][1]
        client.add_raw_listener(Once(), ["ChannelUserevent"])
        with cond:
            assert cond.wait_for(lambda: len(puts) == 2, 5)
            assert "ChannelUserevent" not in puts[1][1]
        fake.push(ev("ChannelUserevent", "t", "PJSIP/9000-1"))
        assert fake.settle(client)
        with cond:
            assert cond.wait_for(lambda: len(puts) == 3, 5)
            assert "ChannelUserevent" in puts[2][1]
    assert got == ["ChannelUserevent"]
    assert {name for name, _ in puts} == {"asterisk-cti-rest"}


def test_raising_listener_does_not_stop_dispatch(fake: FakeAsterisk) -> None:
    class Bad(ChannelEventListener):
        def on_channel_created(self, event: Any) -> None:
            raise ValueError("listener bug")

    errors: List[Any] = []
    rec = Recorder()
    client = fake.client(model=False, error_hook=lambda lst, e, exc: errors.append(exc))
    client.add_listener(Bad())
    client.add_listener(rec)
    client.monitor("PJSIP")
    with client.start():
        fake.push(ev("ChannelCreated", "a"), ev("ChannelCreated", "b"))
        assert fake.settle(client)
    assert rec.specific == ["created:a", "created:b"]
    assert [str(e) for e in errors] == ["listener bug", "listener bug"]


def test_listener_handle_removes_and_a_listener_can_remove_itself(fake: FakeAsterisk) -> None:
    got: List[str] = []

    class Once(ChannelEventListener):
        def on_channel_created(self, event: Any) -> None:
            got.append(event.channel.id)
            handle.remove()

    client = fake.client(model=False)
    handle = client.add_listener(Once())
    client.monitor("PJSIP")
    with client.start():
        fake.push(ev("ChannelCreated", "a"))
        assert fake.settle(client)
        fake.push(ev("ChannelCreated", "b"))
        assert fake.settle(client)
    assert got == ["a"]
    with pytest.raises(TypeError):
        client.add_listener(object())


def test_raw_listener_gets_stasis_start_and_only_the_channels_it_follows(
        fake: FakeAsterisk) -> None:
    got: List[tuple[str, str]] = []
    followed = {"s1"}

    class Raw:
        def on_event(self, event: Event) -> None:
            got.append((event.type, event.channel.id if event.channel else ""))

    client = fake.client(model=False)
    client.add_raw_listener(Raw(), ["StasisStart", "ChannelStateChange", "Dial"],
                            followed.__contains__)
    client.monitor("PJSIP/1000")
    with client.start():
        fake.push(ev("StasisStart", "new", "PJSIP/2000-1", args=["dial"]),
                  ev("ChannelStateChange", "other", "PJSIP/3000-1"),
                  ev("ChannelStateChange", "s1", "PJSIP/3000-2"),
                  {"type": "Dial", "dialstatus": "RINGING",
                   "caller": chan("s1", "PJSIP/3000-2"), "peer": chan("p", "PJSIP/4000-1")},
                  ev("ChannelCreated", "s1", "PJSIP/3000-2"))
        assert fake.settle(client)
    assert sorted(got) == sorted([("StasisStart", "new"), ("ChannelStateChange", "s1"),
                                  ("Dial", "p")])


def test_every_base_listener_method_does_nothing() -> None:
    # The registry skips a base class's method a listener inherits: only sound because each
    # of them is empty (a docstring), which this checks.
    def empty(self: Any, event: Any) -> None:
        """Nothing."""

    for base in (ChannelEventListener, CallListener, ConnectionListener):
        methods = [(n, f) for n, f in vars(base).items() if n.startswith("on_")]
        assert methods
        for name, fn in methods:
            assert fn.__code__.co_code == empty.__code__.co_code, f"{base.__name__}.{name}"


def test_inherited_methods_are_not_called_nor_handed_off_and_overrides_are() -> None:
    posted: List[Any] = []

    def call_soon(fn: Any) -> None:
        posted.append(fn)

    class OnlyCreated(ChannelEventListener):
        def __init__(self) -> None:
            self.got: List[str] = []

        def on_channel_created(self, event: Any) -> None:
            self.got.append("created")

    reg = ListenerRegistry(None, CallListener)
    only = OnlyCreated()
    reg.add(only, call_soon=call_soon)
    reg.deliver((CHANNEL, parse_event(ev("ChannelStateChange"))))
    assert posted == []  # on_event and on_channel_state_change are inherited: nothing to run
    reg.deliver((CHANNEL, parse_event(ev("ChannelCreated"))))
    assert len(posted) == 1
    posted[0]()
    assert only.got == ["created"]

    # an override on the instance counts too
    inst = OnlyCreated()
    seen: List[str] = []
    inst.on_event = lambda event: seen.append(event.type)  # type: ignore[method-assign]
    reg.add(inst)
    reg.deliver((CHANNEL, parse_event(ev("ChannelStateChange"))))
    assert seen == ["ChannelStateChange"]
