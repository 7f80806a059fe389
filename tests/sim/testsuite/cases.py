"""Our translation of tests from Asterisk's testsuite, ``tests/rest_api`` (one per entry).

Each :class:`~tests.sim.testsuite.runner.AriTest` is named by the path of the original test.
The originals are YAML (``test-config.yaml``) plus, for some, a Python callback; the requests,
expected statuses, event patterns and counts below are theirs, rewritten as data. Where a
test needed something we cannot or do not reproduce it is *adapted*, and ``adapted`` says how.

Recurring adaptations:

- **dialplan**: the originals each carry an ``extensions.conf``; ours share one context,
  ``default`` (the simulator's test dialplan and ``tests/integration/lab``), whose extensions
  reproduce the originals' (``s``: Answer + Echo, ``stasis``: Answer + Stasis(testsuite),
  ``one``: Answer + Wait(1) + Hangup, ...). An extension renamed to keep two originals apart
  is named in ``adapted``.
- **AMI origination**: ``ari.AriTestObject`` tests start a channel over AMI
  (``Local/s@default`` running ``Echo``, the ``;2`` half entering ``Stasis(testsuite)`` from
  the dialplan). We originate the same Local channel over ARI to the dialplan
  (``extension=echo``), which gives the same channels without making the app a subscriber.
- **callbacks**: a callback's ``validate(expected, resp)`` becomes the request's ``expect``;
  an ``assert`` on a response becomes a ``response_body`` pattern; ids read from a response
  become fixed ids given in the request.
"""

from __future__ import annotations

from typing import Any, Dict, List

from .runner import START, AriTest, Ev, Req, Step

APP = "testsuite"


def ev(etype: str, count: Any = 1, nomatch: Dict[str, Any] | None = None, **fields: Any) -> Ev:
    """An ``ari-events`` description: ``type`` plus the other fields to match."""
    match: Dict[str, Any] = {"type": etype}
    match.update(fields)
    return Ev(match, count, nomatch)


def chan(cid: str, **more: Any) -> Dict[str, Any]:
    return {"id": cid, **more}


def ami_originate(extension: str = "stasis") -> Req:
    """The adaptation of ``AriTestObject``'s AMI origination of ``Local/s@default`` (Echo):
    the ``;2`` half runs ``extension`` (``Stasis(testsuite)``), the ``;1`` half Echo()."""
    return Req("post", "channels", {"endpoint": f"Local/{extension}@default",
                                    "extension": "echo", "context": "default"})


AMI_NOTE = "started over ARI instead of AMI (Local/stasis@default, the ;1 half in Echo)"
GONE_NOTE = ("the GET expecting 404 runs on ChannelDestroyed, not on ChannelHangupRequest: "
             "Asterisk can still show the channel just after the hang-up request (the lab "
             "answered 200 once under load); stops at ChannelDestroyed, after StasisEnd")

STASIS_ONLY_OPS = [
    ("post", "continue", None), ("post", "redirect", {"endpoint": "doesnt_matter"}),
    ("post", "answer", None), ("post", "dtmf", {"dtmf": "12345"}), ("post", "ring", None),
    ("delete", "ring", None), ("post", "mute", None), ("delete", "mute", None),
    ("post", "hold", None), ("delete", "hold", None), ("post", "moh", None),
    ("delete", "moh", None), ("post", "silence", None), ("delete", "silence", None),
]


def _412s(cid: str, play: str) -> List[Req]:
    reqs = [Req(m, f"channels/{cid}/{op}", p, expect=412) for m, op, p in STASIS_ONLY_OPS]
    reqs.append(Req("post", f"channels/{cid}/play", {"media": play}, expect=412))
    return reqs


def _event_filter(name: str, body: Dict[str, Any]) -> AriTest:
    return AriTest(
        f"applications/event-filter/{name}",
        subscribe_all=True,
        steps=[
            Step(START, [
                Req("put", f"applications/{APP}/eventFilter", body=body),
                Req("post", "channels", {"app": APP, "endpoint": "Local/s@default",
                                         "channelId": "chan1"}),
            ]),
            Step([ev("ChannelCreated", 0, application=APP, channel=chan("chan1"))]),
            Step([ev("ChannelDestroyed", 0, application=APP, channel=chan("chan1"))]),
            Step([ev("StasisStart", application=APP, channel=chan("chan1"))],
                 [Req("delete", "channels/chan1")]),
            Step([ev("StasisEnd", application=APP, channel=chan("chan1"))], stop=True),
        ],
    )


def _device_state(name: str, reqs: List[Req]) -> AriTest:
    return AriTest(
        name,
        steps=[
            Step(START, [ami_originate()]),
            Step([ev("StasisStart", application=APP, args=[])],
                 [*reqs, Req("delete", "channels/{channel.id}")]),
            Step([ev("StasisEnd", application=APP)], stop=True),
        ],
        adapted=AMI_NOTE + "; stops at StasisEnd (the original when its channels are gone)",
    )


def _subscribe_device_state(name: str, double: bool) -> AriTest:
    dev = "Stasis:Test"
    sub = Req("post", f"applications/{APP}/subscription", {"eventSource": f"deviceState:{dev}"})
    reqs = [Req("put", f"deviceStates/{dev}", {"deviceState": "NOT_INUSE"}), sub]
    if double:
        reqs.append(sub)
    reqs += [
        Req("put", f"deviceStates/{dev}", {"deviceState": "INUSE"}),
        Req("delete", f"applications/{APP}/subscription", {"eventSource": f"deviceState:{dev}"}),
        Req("delete", f"deviceStates/{dev}"),
        Req("delete", "channels/{channel.id}"),
    ]
    return AriTest(
        name,
        steps=[
            Step(START, [ami_originate()]),
            Step([ev("StasisStart", application=APP, args=[])], reqs),
            Step([ev("DeviceStateChanged", application=APP,
                     device_state={"name": f"{dev}$", "state": "INUSE$"})], stop=True),
        ],
        adapted=AMI_NOTE,
    )


def _create_dial_412(name: str, play: str) -> AriTest:
    return AriTest(
        name,
        steps=[
            Step(START, [Req("post", "channels/create", {"endpoint": "Local/s@default",
                                                           "app": APP, "channelId": "channel1"},
                             expect=200)]),
            Step([ev("StasisStart", application=APP, channel=chan("channel1"))],
                 [Req("get", "channels/channel1", expect=200), *_412s("channel1", play),
                  Req("delete", "channels/channel1", expect=204)]),
            Step([ev("ChannelHangupRequest", application=APP, channel=chan("channel1"))]),
            Step([ev("StasisEnd", application=APP, channel=chan("channel1"))]),
            Step([ev("ChannelDestroyed", application=APP, channel=chan("channel1$"))],
                 [Req("get", "channels/channel1", expect=404)], stop=True),
        ],
        adapted=GONE_NOTE,
    )


def _bridge_lifecycle(name: str, setup: List[Req], on_enter: List[Req], on_leave: List[Req],
                      final: List[Ev], adapted: str) -> AriTest:
    return AriTest(
        name,
        steps=[
            Step(START, [ami_originate()]),
            Step([ev("StasisStart", application=APP, args=[])], setup),
            Step([ev("ChannelEnteredBridge", application=APP,
                     bridge={"id": "testsuite-bridge$"})], on_enter),
            Step([ev("ChannelLeftBridge", application=APP,
                     bridge={"id": "testsuite-bridge$"})], on_leave),
            Step(final, stop=True),
        ],
        adapted=adapted,
    )


def _bridge_error_requests() -> List[Req]:
    base = [("bridge-0", {"name": "road-runner"}), ("bridge-1", {}),
            ("bridge-2", {"name": "wiley-coyote", "type": "holding"}),
            ("bridge-3", {"name": "", "type": "mixing"})]
    reqs = [Req("post", f"bridges/{uid}", params, expect=200) for uid, params in base]
    for uid, params in base:
        name, btype = params.get("name", ""), params.get("type", "")
        for conflict in ({"type": "proxy_media"},
                         {"name": name, "type": "proxy_media"},
                         {"name": "acme"},
                         {"name": "acme", "type": btype},
                         {"name": "acme", "type": "proxy_media"}):
            reqs.append(Req("post", f"bridges/{uid}", conflict, expect=409))
    reqs += [Req("delete", f"bridges/{uid}") for uid, _ in base]
    return reqs


def _authentication() -> List[Req]:
    bad = [("", ""), ("ro", "not-a-password"), ("notauser", "password")]
    reqs = [Req("get", "channels", auth=bad[0], expect=401),
            Req("post", "channels", auth=bad[0], expect=401)]
    for creds in bad[1:]:
        reqs.append(Req("get", "channels", auth=creds, expect=401))
        reqs.append(Req("get", "channels", auth=creds, api_key=True, expect=401))
    for api_key in (False, True):
        reqs += [Req("options", "channels", api_key=api_key, expect=204),
                 Req("get", "channels", api_key=api_key, expect=200),
                 Req("post", "channels", api_key=api_key, expect=400),
                 Req("put", "channels", api_key=api_key, expect=405),
                 Req("patch", "channels", api_key=api_key, expect=405),
                 Req("delete", "channels", api_key=api_key, expect=405)]
    return reqs


BRIDGE = "testsuite-bridge"
ADD = Req("post", f"bridges/{BRIDGE}/addChannel", {"channel": "{channel.id}"})

CASES: List[AriTest] = [
    # ------------------------------------------------------------ applications
    AriTest(
        "applications/errors",
        steps=[
            Step(START, [ami_originate()]),
            Step([ev("StasisStart", application=APP, args=[])], [
                Req("get", "applications", body_match=[{"name": f"{APP}$"}]),
                Req("get", "applications/notanapp", expect=404),
                Req("post", f"applications/{APP}/subscription", expect=400),
                Req("delete", f"applications/{APP}/subscription", expect=400),
                Req("post", f"applications/{APP}/subscription",
                    {"eventSource": "notascheme:foo"}, expect=400),
                Req("delete", f"applications/{APP}/subscription",
                    {"eventSource": "notascheme:foo"}, expect=400),
                Req("post", f"applications/{APP}/subscription",
                    {"eventSource": "channel:notachannel"}, expect=422),
                Req("delete", f"applications/{APP}/subscription",
                    {"eventSource": "channel:notachannel"}, expect=422),
                Req("post", "channels/{channel.id}/continue"),
            ]),
            Step([ev("ChannelUserevent", 0, eventname="CanYouSeeMe")]),
            Step([ev("StasisEnd", application=APP)], stop=True),
        ],
        adapted=AMI_NOTE + "; stops at StasisEnd",
    ),
    AriTest(
        "applications/subscribe-bridge",
        apps=(APP, "bridge-watching-app"),
        steps=[
            Step(START, [ami_originate()]),
            Step([ev("StasisStart", application=APP, args=[])], [
                Req("post", f"bridges/{BRIDGE}"),
                Req("post", "applications/bridge-watching-app/subscription",
                    {"eventSource": f"bridge:{BRIDGE}"}),
                ADD,
            ]),
            Step([ev("ChannelEnteredBridge", application=APP, bridge={"id": f"{BRIDGE}$"})], [
                Req("delete", "applications/bridge-watching-app/subscription",
                    {"eventSource": f"bridge:{BRIDGE}"}),
                Req("post", f"bridges/{BRIDGE}/removeChannel", {"channel": "{channel.id}"}),
            ]),
            Step([ev("ChannelLeftBridge", application=APP, bridge={"id": f"{BRIDGE}$"})], [
                Req("delete", "channels/{channel.id}"),
                Req("delete", f"bridges/{BRIDGE}"),
            ]),
            Step([ev("ChannelLeftBridge", 0, application="bridge-watching-app")]),
            Step([ev("StasisEnd", application=APP)], stop=True),
        ],
        adapted=AMI_NOTE + "; the bridge gets a fixed id; stops at StasisEnd",
    ),
    _event_filter("allowed", {"allowed": [{"type": "StasisStart"}, {"type": "StasisEnd"}]}),
    _event_filter("both", {
        "allowed": [{"type": "StasisStart"}, {"type": "StasisEnd"}, {"type": "ChannelCreated"}],
        "disallowed": [{"type": "ChannelCreated"}],
    }),
    _event_filter("disallowed", {
        "disallowed": [{"type": "ChannelCreated"}, {"type": "ChannelDestroyed"}],
    }),
    AriTest(
        "applications/subscribe-all-bridge",
        steps=[
            Step(START, [
                Req("post", f"applications/{APP}/subscription?eventSource=bridge:", expect=200),
                Req("post", "channels", {"endpoint": "Local/s@default", "app": APP,
                                         "channelId": "channel1"}, expect=200),
            ]),
            Step([ev("StasisStart", application=APP, channel=chan("channel1"))],
                 [Req("post", "bridges", {"bridgeId": "bridge1"}, expect=200)]),
            Step([ev("BridgeCreated", bridge={
                "technology": "simple_bridge", "bridge_type": "mixing",
                "bridge_class": "stasis", "id": "bridge1"})],
                [Req("post", "bridges/bridge1/addChannel", {"channel": "channel1"}, expect=204)]),
            Step([ev("ChannelEnteredBridge", channel=chan("channel1"), bridge={
                "technology": "simple_bridge", "bridge_type": "mixing",
                "bridge_class": "stasis", "id": "bridge1"})],
                [Req("post", "bridges/bridge1/removeChannel", {"channel": "channel1"},
                     expect=204)]),
            Step([ev("ChannelLeftBridge", channel=chan("channel1"), bridge={
                "technology": "simple_bridge", "bridge_type": "mixing",
                "bridge_class": "stasis", "id": "bridge1"})],
                [Req("delete", "bridges/bridge1", expect=204)]),
            Step([ev("BridgeDestroyed", bridge={
                "technology": "simple_bridge", "bridge_type": "mixing",
                "bridge_class": "stasis", "id": "bridge1"})],
                [Req("post", "bridges", {"bridgeId": "bridge2"}, expect=200)]),
            Step([ev("BridgeCreated", bridge={
                "technology": "simple_bridge", "bridge_type": "mixing",
                "bridge_class": "stasis", "id": "bridge2"})],
                [Req("delete", "bridges/bridge2", expect=204)]),
            Step([ev("BridgeDestroyed", bridge={
                "technology": "simple_bridge", "bridge_type": "mixing",
                "bridge_class": "stasis", "id": "bridge2"})],
                [Req("delete", "channels/channel1", expect=204)], stop=True),
        ],
    ),
    AriTest(
        "applications/channel-subscriptions/originate_to_stasis_app/local_channels",
        steps=[
            Step(START, [Req("post", "channels", {
                "endpoint": "Local/do_stuff@default", "channelId": "StasisHalf",
                "otherChannelId": "DpHalf", "app": APP})]),
            Step([
                ev("ChannelDialplan", "1", dialplan_app="NoOp", channel=chan("DpHalf")),
                ev("ChannelDialplan", "1", dialplan_app="Answer", channel=chan("DpHalf")),
                ev("ChannelDialplan", "1", dialplan_app="Playback",
                   dialplan_app_data="silence/1", channel=chan("DpHalf")),
            ]),
            Step([ev("StasisStart", "1", channel=chan("StasisHalf"))]),
            Step([ev("ChannelDestroyed", channel=chan("StasisHalf$"))], stop=True),
        ],
        adapted="stops when StasisHalf is destroyed (the original when all channels are gone)",
    ),
    AriTest(
        "applications/subscribe-endpoint/off-nominal/unknown_resource",
        steps=[Step(START, [Req("post", f"applications/{APP}/subscription",
                                {"eventSource": "endpoint:PJSIP/alice"}, expect=422)],
                    stop=True)],
    ),
    AriTest(
        "applications/subscribe-endpoint/off-nominal/unknown_tech",
        steps=[Step(START, [Req("post", f"applications/{APP}/subscription",
                                {"eventSource": "endpoint:BLAH/bob"}, expect=422)],
                    stop=True)],
    ),
    AriTest(
        "applications/subscribe-all (subscriptions only)",
        steps=[Step(START, [
            Req("post", f"applications/{APP}/subscription?eventSource=bridge:", expect=200),
            Req("post", f"applications/{APP}/subscription?eventSource=channel:", expect=200),
            Req("post", f"applications/{APP}/subscription?eventSource=endpoint:", expect=200),
            Req("post", f"applications/{APP}/subscription?eventSource=deviceState:",
                expect=200),
        ], stop=True)],
        adapted="only its four subscriptions with an empty id (all bridges, channels, "
                "endpoints, device states); the rest needs a dynamic PJSIP endpoint and a "
                "SIP peer",
    ),
    _subscribe_device_state("applications/subscribe-device-state", double=False),
    _subscribe_device_state("applications/double-subscribe-device-state", double=True),
    # ------------------------------------------------------------ device states
    _device_state("device_state/add_remove", [
        Req("put", "deviceStates/Stasis:Test", {"deviceState": "NOT_INUSE"}),
        Req("get", "deviceStates/Stasis:Test", body_match={"state": "NOT_INUSE$"}),
        Req("delete", "deviceStates/Stasis:Test"),
        Req("get", "deviceStates/Stasis:Test", body_match={"state": "UNKNOWN$"}),
    ]),
    _device_state("device_state/change", [
        Req("put", "deviceStates/Stasis:Test", {"deviceState": "NOT_INUSE"}),
        Req("get", "deviceStates/Stasis:Test", body_match={"state": "NOT_INUSE$"}),
        Req("put", "deviceStates/Stasis:Test", {"deviceState": "INUSE"}),
        Req("get", "deviceStates/Stasis:Test", body_match={"state": "INUSE$"}),
        Req("delete", "deviceStates/Stasis:Test"),
    ]),
    _device_state("device_state/list", [
        Req("put", "deviceStates/Stasis:Test1", {"deviceState": "NOT_INUSE"}),
        Req("put", "deviceStates/Stasis:Test2", {"deviceState": "NOT_INUSE"}),
        Req("get", "deviceStates", body_match=[
            {"name": "Stasis:Test[12]$", "state": "NOT_INUSE$"},
            {"name": "Stasis:Test[12]$", "state": "NOT_INUSE$"}]),
        Req("delete", "deviceStates/Stasis:Test1"),
        Req("delete", "deviceStates/Stasis:Test2"),
    ]),
    _device_state("device_state/add_invalid", [
        Req("put", "deviceStates/Invalid:Test", {"deviceState": "NOT_INUSE"}, expect=409),
        Req("put", "deviceStates/Stasis:", {"deviceState": "NOT_INUSE"}, expect=404),
    ]),
    AriTest(
        "authentication",
        steps=[Step(START, _authentication(), stop=True)],
        adapted="the read-write user is the server's own user; the read-only and crypt "
                "users of the original's ari.conf are not configured (their wrong-password "
                "and unknown-user checks are kept)",
    ),
    AriTest(
        "request-bodies",
        steps=[Step(START, [
            Req("post", "bridges", body={"type": "holding"}, form=True,
                body_match={"bridge_type": "holding$"}),
            Req("post", "bridges", body={"type": "holding"},
                body_match={"bridge_type": "holding$"}),
            Req("post", "bridges", body='{"type": "holding", invalid json}', expect=400),
        ], stop=True)],
        adapted="the created bridges are deleted by the runner at the end",
    ),
    # ------------------------------------------------------------ bridges
    AriTest(
        "bridges/error",
        steps=[
            Step(START, [ami_originate()]),
            Step([ev("StasisStart", application=APP, args=[])],
                 [*_bridge_error_requests(), Req("delete", "channels/{channel.id}")]),
            Step([ev("StasisEnd", application=APP)], stop=True),
        ],
        adapted=AMI_NOTE + "; bridge ids bridge-0..3 instead of random UUIDs",
    ),
    _bridge_lifecycle(
        "bridges/happy",
        [Req("post", f"bridges/{BRIDGE}"), Req("post", "channels/{channel.id}/answer"), ADD],
        [Req("post", f"bridges/{BRIDGE}/removeChannel", {"channel": "{channel.id}"})],
        [Req("delete", "channels/{channel.id}")],
        [ev("StasisEnd", application=APP)],
        AMI_NOTE + "; the bridge gets a fixed id, deleted at the end by the runner",
    ),
    _bridge_lifecycle(
        "bridges/hangup",
        [Req("post", f"bridges/{BRIDGE}"), Req("post", "channels/{channel.id}/answer"), ADD],
        [Req("delete", "channels/{channel.id}")],
        [],
        [ev("StasisEnd", application=APP)],
        AMI_NOTE + "; the bridge gets a fixed id, deleted at the end by the runner",
    ),
    _bridge_lifecycle(
        "bridges/delete",
        [Req("post", f"bridges/{BRIDGE}"), Req("post", "channels/{channel.id}/answer"), ADD,
         Req("post", f"applications/{APP}/subscription", {"eventSource": f"bridge:{BRIDGE}"})],
        [Req("delete", f"bridges/{BRIDGE}")],
        [],
        [ev("BridgeDestroyed", application=APP, bridge={"id": f"{BRIDGE}$"})],
        AMI_NOTE + "; the bridge gets a fixed id; the checks made on BridgeDestroyed run "
        "in the next test step",
    ),
    AriTest(
        "bridges/move",
        steps=[
            Step(START, [ami_originate()]),
            Step([ev("StasisStart", application=APP, args=[])], [
                Req("post", "bridges/bridge-1"), Req("post", "bridges/bridge-2"),
                Req("post", "channels/{channel.id}/answer"),
                Req("post", "bridges/bridge-1/addChannel", {"channel": "{channel.id}"}),
            ]),
            Step([ev("ChannelEnteredBridge", 2, application=APP)]),
            Step([ev("ChannelEnteredBridge", application=APP, bridge={"id": "bridge-1$"})],
                 [Req("post", "bridges/bridge-2/addChannel", {"channel": "{channel.id}"})]),
            Step([ev("ChannelEnteredBridge", application=APP, bridge={"id": "bridge-2$"})],
                 [Req("delete", "channels/{channel.id}")]),
            Step([ev("ChannelLeftBridge", 2, application=APP, bridge={"id": "bridge-[12]$"})]),
            Step([ev("StasisEnd", application=APP)],
                 [Req("delete", "bridges/bridge-1"), Req("delete", "bridges/bridge-2")],
                 stop=True),
        ],
        adapted=AMI_NOTE + "; bridges get fixed ids, so the callback's per-bridge branches "
                "are steps matching each id",
    ),
    AriTest(
        "bridges/unhappy",
        steps=[
            Step(START, [Req("post", "channels", {"endpoint": "Local/stasis_echo@default",
                                                  "extension": "echo", "context": "default",
                                                  "channelId": "ami-echo",
                                                  "otherChannelId": "ami-chan"})]),
            Step([ev("StasisStart", application=APP, args=[], channel=chan("ami-chan$"))],
                 [Req("post", "channels/ami-chan/answer"),
                  Req("post", "channels", {"endpoint": "Local/stasis_echo@default",
                                           "extension": "echo", "context": "default",
                                           "channelId": "stasis-echo",
                                           "otherChannelId": "stasis-chan"})]),
            Step([ev("StasisStart", application=APP, args=[], channel=chan("stasis-chan$"))],
                 [Req("post", "channels/stasis-chan/answer"),
                  Req("post", "channels/ami-chan/continue")]),
            Step([ev("StasisEnd", application=APP, channel=chan("ami-chan$"))], [
                Req("post", "bridges/b1"), Req("post", "bridges/b2"),
                Req("post", "bridges/i-am-not-a-bridge/addChannel",
                    {"channel": "stasis-chan"}, expect=404),
                Req("post", "bridges/i-am-not-a-bridge/removeChannel",
                    {"channel": "stasis-chan"}, expect=404),
                Req("post", "bridges/b1/addChannel", {"channel": "ami-chan"}, expect=422),
                Req("post", "bridges/b1/addChannel", {"channel": "i-am-not-a-channel"},
                    expect=400),
                Req("post", "bridges/b1/removeChannel", {"channel": "i-am-not-a-channel"},
                    expect=400),
                Req("post", "bridges/b1/removeChannel", {"channel": "ami-chan"}, expect=422),
                Req("post", "bridges/b1/removeChannel", {"channel": "stasis-chan"},
                    expect=422),
                Req("post", "bridges/b1/addChannel", {"channel": "stasis-chan"}),
                Req("post", "bridges/b2/removeChannel", {"channel": "stasis-chan"},
                    expect=422),
                Req("get", "bridges/b1", body_match={"channels": ["stasis-chan$"]}),
                Req("post", "bridges/b1/removeChannel", {"channel": "stasis-chan"}),
                Req("delete", "bridges/b1"), Req("delete", "bridges/b2"),
                Req("delete", "channels/ami-chan"), Req("delete", "channels/stasis-chan"),
            ]),
            Step([ev("StasisEnd", application=APP, channel=chan("stasis-chan$"))], stop=True),
        ],
        adapted="both channels started over ARI (the Stasis halves given ids), the second "
                "once the first is in Stasis and the first continued once the second is (the "
                "original waits for both with flags); extension s (Stasis then "
                "AGI(agi:async)) is 'stasis_echo' (Stasis then Echo); bridges get fixed ids",
    ),
    AriTest(
        "bridges/bridge_by_id",
        steps=[
            Step(START, [Req("post", "channels", {"endpoint": "Local/s@default", "app": APP,
                                                  "channelId": "testsuite-default-id"})]),
            Step([ev("ChannelStateChange", ">1")]),
            Step([ev("StasisStart", application=APP, channel=chan("testsuite-default-id$"))], [
                Req("post", "bridges", {"bridgeId": "MyFirstBridge"}),
                Req("post", f"applications/{APP}/subscription",
                    {"eventSource": "bridge:MyFirstBridge"}),
                Req("post", "channels", {"endpoint": "Local/s@default",
                                         "channelId": "MyFirstChannel", "app": APP}),
            ]),
            Step([ev("StasisStart", application=APP, channel=chan("MyFirstChannel$"))],
                 [Req("post", "bridges/MyFirstBridge/addChannel",
                      {"channel": "MyFirstChannel"})]),
            Step([ev("ChannelEnteredBridge", application=APP, channel=chan("MyFirstChannel$"))],
                 [Req("post", "bridges/MyFirstBridge/removeChannel",
                      {"channel": "MyFirstChannel"})]),
            Step([ev("ChannelLeftBridge", application=APP, channel=chan("MyFirstChannel$"))],
                 [Req("delete", "bridges/MyFirstBridge")]),
            Step([ev("BridgeDestroyed", application=APP, bridge={"id": "MyFirstBridge$"})],
                 [Req("delete", "channels/MyFirstChannel")]),
            Step([ev("ChannelHangupRequest", application=APP,
                     channel=chan("MyFirstChannel$"))]),
            Step([ev("ChannelDestroyed", application=APP, channel=chan("MyFirstChannel$"))],
                 [Req("delete", "channels/testsuite-default-id")]),
            Step([ev("StasisEnd", application=APP, channel=chan("MyFirstChannel$"))]),
            Step([ev("ChannelHangupRequest", application=APP,
                     channel=chan("testsuite-default-id$"))]),
            Step([ev("ChannelDestroyed", application=APP,
                     channel=chan("testsuite-default-id$"))], stop=True),
            Step([ev("StasisEnd", application=APP, channel=chan("testsuite-default-id$"))]),
        ],
    ),
    # ------------------------------------------------------------ channels/create + dial
    AriTest(
        "channels/create_dial_bridge/create/nominal",
        steps=[
            Step(START, [Req("post", "channels/create", {"endpoint": "Local/s@default",
                                                         "app": APP, "channelId": "channel1"},
                             body={"variables": {"ALICE": "bob"}}, expect=200)]),
            Step([ev("StasisStart", application=APP, channel=chan("channel1"))], [
                Req("get", "channels/channel1", expect=200),
                Req("get", "channels/channel1/variable", {"variable": "ALICE"}, expect=200),
                Req("delete", "channels/channel1", expect=204),
            ]),
            Step([ev("ChannelHangupRequest", application=APP, channel=chan("channel1"))]),
            Step([ev("StasisEnd", application=APP, channel=chan("channel1"))]),
            Step([ev("ChannelDestroyed", application=APP, channel=chan("channel1$"))],
                 [Req("get", "channels/channel1", expect=404)], stop=True),
        ],
        adapted=GONE_NOTE,
    ),
    _create_dial_412("channels/create_dial_bridge/create/off-nominal", "sound:silence/5"),
    AriTest(
        "channels/create_dial_bridge/dial/nominal/basic",
        steps=[
            Step(START, [Req("post", "channels/create", {"endpoint": "Local/short@default",
                                                         "app": APP, "channelId": "channel1"},
                             expect=200)]),
            Step([ev("StasisStart", application=APP, channel=chan("channel1"))], [
                Req("get", "channels/channel1", expect=200),
                Req("post", "channels/channel1/dial", expect=204),
            ]),
            Step([ev("Dial", application=APP, dialstatus="ANSWER",
                     peer=chan("channel1", state="Up"))]),
            Step([ev("ChannelHangupRequest", application=APP, cause=16,
                     channel=chan("channel1"))]),
            Step([ev("StasisEnd", application=APP, channel=chan("channel1"))]),
            Step([ev("ChannelDestroyed", application=APP, channel=chan("channel1"))],
                 stop=True),
        ],
        adapted="extension s (Answer, Playback(silence/3), Hangup) is 'short' (Answer, "
                "Wait(3), Hangup): no sound files needed",
    ),
    AriTest(
        "channels/create_dial_bridge/dial/nominal/continue",
        steps=[
            Step(START, [Req("post", "channels/create", {"endpoint": "Local/1000@default",
                                                         "app": APP,
                                                         "appArgs": "extension_1000",
                                                         "channelId": "channel1"},
                             expect=200)]),
            Step([ev("StasisStart", application=APP, args=["extension_1000"],
                     channel=chan("channel1"))], [
                Req("get", "channels/channel1", expect=200),
                Req("post", "channels/channel1/dial", expect=204),
            ]),
            Step([ev("Dial", application=APP, dialstatus="ANSWER",
                     peer=chan("channel1", state="Up"))],
                 [Req("post", "channels/channel1/continue",
                      {"context": "default", "extension": "2000", "priority": 1},
                      expect=204)]),
            Step([ev("ChannelDialplan", application=APP, dialplan_app="Hangup",
                     channel=chan("channel1"))]),
            Step([ev("ChannelDestroyed", application=APP, cause=99, channel=chan("channel1"))],
                 stop=True),
        ],
    ),
    AriTest(
        "channels/create_dial_bridge/dial/off-nominal",
        steps=[
            Step(START, [Req("post", "channels/create", {"endpoint": "Local/ring@default",
                                                         "app": APP, "channelId": "channel1"},
                             expect=200)]),
            Step([ev("StasisStart", application=APP, channel=chan("channel1"))], [
                Req("get", "channels/channel1", expect=200),
                Req("post", "channels/channel1/dial", expect=204),
            ]),
            Step([ev("Dial", application=APP, dialstatus="RINGING", peer=chan("channel1"))],
                 _412s("channel1", "sound:silence/1")),
            Step([ev("ChannelHangupRequest", application=APP, cause=0,
                     channel=chan("channel1"))]),
            Step([ev("StasisEnd", application=APP, channel=chan("channel1"))]),
            Step([ev("ChannelDestroyed", application=APP, channel=chan("channel1"))],
                 stop=True),
        ],
        adapted="extension s (Ringing, Wait(3)) is named 'ring'",
    ),
    # ------------------------------------------------------------ channels/originate*
    AriTest(
        "channels/create_duplicate_id",
        steps=[
            Step(START, [Req("post", "channels", {"endpoint": "Local/echo@default",
                                                  "channelId": "eggs", "app": APP})]),
            Step([ev("StasisStart", application=APP, args=[])], [
                Req("post", "channels/create", {"endpoint": "Local/echo@default",
                                                "channelId": "eggs", "otherChannelId": "bacon",
                                                "app": APP, "appArgs": "FAIL"}, expect=409),
                Req("post", "channels/create", {"endpoint": "Local/echo@default",
                                                "channelId": "bacon", "otherChannelId": "eggs",
                                                "app": APP, "appArgs": "FAIL"}, expect=409),
                Req("delete", "channels/{channel.id}"),
            ]),
            Step([ev("StasisStart", 0, application=APP, args=["FAIL"])]),
            Step([ev("StasisEnd", application=APP)], stop=True),
        ],
        adapted="stops at StasisEnd (the original when its channels are gone)",
    ),
    AriTest(
        "channels/originate_duplicate_id",
        steps=[
            Step(START, [Req("post", "channels", {"endpoint": "Local/echo@default",
                                                  "channelId": "eggs", "app": APP})]),
            Step([ev("StasisStart", application=APP, args=[])], [
                Req("post", "channels", {"endpoint": "Local/echo@default", "channelId": "eggs",
                                         "otherChannelId": "bacon", "app": APP,
                                         "appArgs": "FAIL"}, expect=409),
                Req("post", "channels", {"endpoint": "Local/echo@default",
                                         "channelId": "bacon", "otherChannelId": "eggs",
                                         "app": APP, "appArgs": "FAIL"}, expect=409),
                Req("post", "channels/eggs", {"endpoint": "Local/echo@default",
                                              "otherChannelId": "bacon", "app": APP,
                                              "appArgs": "FAIL"}, expect=409),
                Req("post", "channels/bacon", {"endpoint": "Local/echo@default",
                                               "otherChannelId": "eggs", "app": APP,
                                               "appArgs": "FAIL"}, expect=409),
                Req("delete", "channels/{channel.id}"),
            ]),
            Step([ev("StasisStart", 0, application=APP, args=["FAIL"])]),
            Step([ev("StasisEnd", application=APP)], stop=True),
        ],
        adapted="stops at StasisEnd (the original when its channels are gone)",
    ),
    AriTest(
        "channels/originate",
        steps=[
            Step(START, [ami_originate()]),
            Step([ev("StasisStart", application=APP, args=[])],
                 [Req("post", "channels", {"endpoint": "Local/wait5@default", "app": APP,
                                           "appArgs": "blast"})] * 15
                 + [Req("delete", "channels/{channel.id}")]),
            Step([ev("StasisStart", 15, application=APP, args=["blast"])]),
            Step([ev("ChannelDestroyed", 30, application=APP)], stop_after=30),
        ],
        timeout=20.0,
        adapted=AMI_NOTE + "; extension 1000 (Answer, Wait(5), Hangup) is named 'wait5'",
    ),
    AriTest(
        "channels/originate_then_continue",
        steps=[
            Step(START, [ami_originate()]),
            Step([ev("StasisStart", application=APP, nomatch={"channel": {"id": "continue_guy"}})],
                 [Req("post", "channels", {"endpoint": "Local/1000@default", "app": APP,
                                           "channelId": "continue_guy", "appArgs": "dummy"}),
                  Req("delete", "channels/{channel.id}")]),
            Step([ev("StasisStart", application=APP, channel=chan("continue_guy"))],
                 [Req("post", "channels/continue_guy/continue",
                      {"context": "default", "extension": "2000", "priority": 1})]),
            Step([ev("ChannelDestroyed", application=APP, channel=chan("continue_guy$"))],
                 stop=True),
        ],
        adapted=AMI_NOTE + "; extension 2000 hangs up with cause 99 here (no UserEvent); "
                "stops when continue_guy is destroyed, which it only is on an app still "
                "subscribed after continue",
    ),
    AriTest(
        "channels/originate_with_id",
        apps=(APP, "id-watch"),
        steps=[
            Step(START, [
                Req("post", "applications/id-watch/subscription", {"eventSource": "channel:"}),
                Req("post", "channels", {"endpoint": "Local/one@default",
                                         "channelId": "MyCustomId",
                                         "otherChannelId": "MyOtherCustomId",
                                         "app": "no-app"}),
                Req("post", "channels", {"endpoint": "Local/two@default",
                                         "channelId": "OnlyOneId", "app": "no-app"}),
                Req("post", "channels", {"endpoint": "Local/three@default", "app": "no-app"}),
                Req("post", "channels", {"endpoint": "Local/four@default",
                                         "channelId": "MyStasisId",
                                         "otherChannelId": "MyOtherStasisId", "app": APP}),
            ]),
            Step([
                ev("ChannelCreated", application="id-watch",
                   channel={"id": "MyCustomId$", "name": "Local/one@default-.{8};1"}),
                ev("ChannelCreated", application="id-watch",
                   channel={"id": "MyOtherCustomId$", "name": "Local/one@default-.{8};2"}),
                ev("ChannelCreated", application="id-watch",
                   channel={"id": "OnlyOneId$", "name": "Local/two@default-.{8};1"}),
                ev("ChannelCreated", application="id-watch",
                   channel={"id": "OnlyOneId;2$", "name": "Local/two@default-.{8};2"}),
                ev("ChannelCreated", application="id-watch",
                   channel={"id": r"[0-9]{10}\.[0-9]+$", "name": "Local/three@default-.{8};1"}),
                ev("ChannelCreated", application="id-watch",
                   channel={"id": r"[0-9]{10}\.[0-9]+$", "name": "Local/three@default-.{8};2"}),
                ev("ChannelCreated", application="id-watch",
                   channel={"id": "MyStasisId$", "name": "Local/four@default-.{8};1"}),
                ev("ChannelCreated", application="id-watch",
                   channel={"id": "MyOtherStasisId$", "name": "Local/four@default-.{8};2"}),
            ]),
            Step([ev("StasisStart", application=APP, channel=chan("MyStasisId$"))]),
            Step([ev("StasisStart", 0, application=APP, channel=chan("MyOtherStasisId"))]),
            Step([ev("ChannelStateChange", application=APP, channel=chan("MyStasisId$"))],
                 [Req("delete", "channels/MyStasisId")]),
            Step([ev("ChannelHangupRequest", application=APP, channel=chan("MyStasisId$"))]),
            Step([ev("StasisEnd", application=APP, channel=chan("MyStasisId$"))]),
            Step([ev("ChannelDestroyed", application=APP, channel=chan("MyStasisId$"))],
                 stop=True),
        ],
        adapted="the AMI Newchannel checks of ids and names become ChannelCreated events "
                "seen by a second app subscribed to all channels (channel:); the Local "
                "sequence number in the name is not checked (the lab's is not reset)",
    ),
    AriTest(
        "channels/originate_with_linkedid",
        steps=[
            Step(START, [Req("post", "channels", {"endpoint": "Local/one@default",
                                                  "channelId": "MyCustomId", "app": APP})]),
            Step([ev("StasisStart", application=APP, channel=chan("MyCustomId$"))], [
                Req("post", "channels?originator=MyCustomId&app=testsuite&endpoint="
                    "Local%2Ftwo%40default&channelId=MySecondId"),
                Req("get", "channels/MySecondId/variable", {"variable": "CHANNEL(linkedid)"},
                    body_match={"value": "MyCustomId$"}),
                Req("get", "channels/MySecondId%3B2/variable",
                    {"variable": "CHANNEL(linkedid)"}, body_match={"value": "MyCustomId$"}),
            ]),
            Step([ev("ChannelDestroyed", application=APP, channel=chan("MySecondId$"))],
                 stop=True),
        ],
        adapted="the CEL check of LinkedId becomes a read of CHANNEL(linkedid) on both halves",
    ),
    AriTest(
        "channels/originate_with_vars",
        steps=[
            Step(START, [ami_originate()]),
            Step([ev("StasisStart", application=APP, args=[])], [
                Req("post", "channels", {"endpoint": "Local/1000@default", "app": APP,
                                         "appArgs": "with_vars", "channelId": "with-vars"},
                    body={"variables": {"CALLERID(name)": "foo"}},
                    body_match={"caller": {"name": "foo$"}}),
                Req("delete", "channels/with-vars"),
                Req("delete", "channels/{channel.id}"),
            ]),
            Step([ev("StasisEnd", application=APP,
                     nomatch={"channel": {"id": "with-vars"}})], stop=True),
        ],
        adapted=AMI_NOTE + "; the originated channel gets an id to delete it by; stops at "
                "the first channel's StasisEnd",
    ),
    AriTest(
        "channels/channel_variables/get_set_single",
        steps=[
            Step(START, [Req("post", "channels/create", {"endpoint": "Local/s@default",
                                                         "app": APP, "channelId": "channel1"},
                             body={"variables": {"CALLSTATE": {"value": "created",
                                                               "report_events": True}}},
                             expect=200)]),
            Step([ev("StasisStart", application=APP, channel=chan("channel1"))], [
                Req("post", "channels/channel1/variable", {
                    "channelId": "channel1", "variable": "ALICEEXTRA1", "value": "extra",
                    "report_events": False}, expect=204),
                Req("get", "channels/channel1/variable", {"channelId": "channel1",
                                                          "variable": "ALICEEXTRA1"},
                    body_match={"value": "extra"}),
                Req("get", "channels/channel1/variable", {"channelId": "channel1",
                                                          "variable": "CALLSTATE"},
                    body_match={"value": "created"}),
                Req("delete", "channels/channel1", expect=204),
            ]),
            Step([ev("StasisEnd", application=APP,
                     channel=chan("channel1", channelvars={"CALLSTATE": "created"}))],
                 stop=True),
        ],
    ),
    AriTest(
        "channels/channel_variables/get_set_multiple",
        steps=[
            Step(START, [Req("post", "channels/create", {"endpoint": "Local/s@default",
                                                         "app": APP, "channelId": "channel1"},
                             body={"variables": {"CALLSTATE": {"value": "created",
                                                               "report_events": True}}},
                             expect=200)]),
            Step([ev("StasisStart", application=APP, channel=chan("channel1"))], [
                Req("post", "channels/channel1/variables", body={"variables": {
                    "TESTVAR1": "test1",
                    "TESTVAR2 ": {"value": "test2", "report_events": True},
                    " TESTVAR3": "test3"}}, expect=204),
                Req("get", "channels/channel1/variables",
                    {"variables": " TESTVAR1, TESTVAR2 ,TESTVAR3"},
                    body_match={"variables": {"TESTVAR1": "test1", "TESTVAR2": "test2",
                                              "TESTVAR3": "test3"}}),
                Req("delete", "channels/channel1", expect=204),
            ]),
            Step([ev("StasisEnd", application=APP, channel=chan(
                "channel1", channelvars={"CALLSTATE": "created", "TESTVAR2": "test2"}))],
                stop=True),
        ],
    ),
    AriTest(
        "channels/connected_line_update",
        steps=[
            Step(START, [ami_originate()]),
            Step([ev("StasisStart", args=[])],
                 [Req("post", "channels/{channel.id}/variable",
                      {"variable": "CONNECTEDLINE(all)", "value": "TEST <1234>"})]),
            Step([ev("ChannelConnectedLine",
                     channel={"connected": {"name": "TEST", "number": "1234"}})],
                 [Req("delete", "channels/{channel.id}")]),
            Step([ev("StasisEnd", application=APP)], stop=True),
        ],
        adapted=AMI_NOTE + "; stops at StasisEnd",
    ),
    AriTest(
        "channels/hold/hold_intercept",
        steps=[
            Step(START, [Req("post", "channels", {"endpoint": "Local/stasis@default",
                                                  "extension": "echo", "context": "default",
                                                  "channelId": "echo-half",
                                                  "otherChannelId": "held"})]),
            Step([ev("StasisStart", application=APP, args=[])], [
                Req("post", "channels/held/variable", {"variable": "HOLD_INTERCEPT(set)"}),
                Req("post", "channels/held/hold"),
            ]),
            Step([ev("ChannelHold", application=APP, channel={"name": "Local/stasis@default-.*"})],
                 [Req("delete", "channels/held/hold")]),
            Step([ev("ChannelUnhold", application=APP,
                     channel={"name": "Local/stasis@default-.*"})],
                 [Req("delete", "channels/held")]),
            Step([ev("StasisEnd", application=APP)], stop=True),
        ],
        adapted=AMI_NOTE + " (the Stasis half given an id); the channel name is "
                "Local/stasis@default; stops at StasisEnd",
    ),
    AriTest(
        "channels/redirect/off-nominal",
        steps=[
            Step(START, [ami_originate()]),
            Step([ev("StasisStart", application=APP, args=[])],
                 [Req("post", "channels", {"endpoint": "PJSIP/1000", "app": APP,
                                           "appArgs": "redirect_test",
                                           "channelId": "redirected"})]),
            Step([ev("StasisStart", application=APP, args=["redirect_test"])], [
                Req("post", "channels//redirect", {"endpoint": "PJSIP/asterisk"}, expect=400),
                Req("post", "channels/12345/redirect", {"endpoint": "PJSIP/asterisk"},
                    expect=404),
                Req("post", "channels/{channel.id}/redirect", expect=400),
                Req("post", "channels/{channel.id}/redirect", {"endpoint": "Local/s@default"},
                    expect=422),
                Req("post", "channels/{channel.id}/redirect", {"endpoint": "PJSIP/"},
                    expect=422),
            ], stop=True),
        ],
        adapted=AMI_NOTE + "; the second channel is PJSIP/1000 (a lab phone, answering) "
                "instead of the test's SIPp peer PJSIP/asterisk",
    ),
    AriTest(
        "channels/snoop_id",
        steps=[
            Step(START, [Req("post", "channels", {"endpoint": "Local/s@default", "app": APP,
                                                  "channelId": "testsuite-default-id"})]),
            Step([ev("ChannelStateChange", ">1")]),
            Step([ev("StasisStart", application=APP, channel=chan("testsuite-default-id$"))],
                 [Req("post", "channels/testsuite-default-id/snoop/MySnoopyId",
                      {"spy": "both", "app": APP})]),
            Step([ev("StasisStart", application=APP, channel=chan("MySnoopyId"))],
                 [Req("delete", "channels/{channel.id}")]),
            Step([ev("ChannelHangupRequest", application=APP, channel=chan("MySnoopyId"))]),
            Step([ev("StasisEnd", application=APP, channel=chan("MySnoopyId"))],
                 [Req("delete", "channels/testsuite-default-id")]),
            Step([ev("ChannelHangupRequest", application=APP,
                     channel=chan("testsuite-default-id$"))]),
            Step([ev("StasisEnd", application=APP, channel=chan("testsuite-default-id$"))]),
            Step([ev("ChannelDestroyed", application=APP,
                     channel=chan("testsuite-default-id$"))], stop=True),
        ],
    ),
    AriTest(
        "move",
        apps=(APP, "no-args", "one-arg", "multiple-args"),
        steps=[
            Step(START, [Req("post", "channels", {"endpoint": "Local/s@default", "app": APP,
                                                  "channelId": "testsuite-default-id"})]),
            Step([ev("StasisStart", "1", application=APP)], [
                Req("post", "channels/testsuite-default-id/move", {"app": "i-dont-exist"}),
                Req("post", "channels/testsuite-default-id/move", {"app": "no-args"}),
            ]),
            Step([ev("StasisEnd", "1", application=APP)]),
            Step([ev("StasisStart", "1", application="no-args")],
                 [Req("post", "channels/testsuite-default-id/move",
                      {"app": "one-arg", "appArgs": "apples"})]),
            Step([ev("StasisEnd", "1", application="no-args")]),
            Step([ev("StasisStart", "1", application="one-arg", args=["apples"])],
                 [Req("post", "channels/testsuite-default-id/move",
                      {"app": "multiple-args", "appArgs": "apples,bananas,carrots"})]),
            Step([ev("StasisEnd", "1", application="one-arg")]),
            Step([ev("StasisStart", "1", application="multiple-args",
                     args=["apples", "bananas", "carrots"])],
                 [Req("delete", "channels/testsuite-default-id")]),
            Step([ev("StasisEnd", "1", application="multiple-args",
                     channel=chan("testsuite-default-id"))], stop=True),
        ],
    ),
    AriTest(
        "channels/originate_to_pjsip_endpoint",
        steps=[
            Step(START, [Req("post", "channels", {"endpoint": "PJSIP/1000", "app": APP,
                                                  "channelId": "MyCustomId",
                                                  "otherChannelId": "MyOtherCustomId"},
                             expect=200)]),
            Step([ev("StasisStart", application=APP, channel=chan(
                "MyCustomId", protocol_id="^.{8}-.{4}-.{4}-.{4}-.{12}$"))],
                [Req("delete", "channels/MyCustomId", expect=204)]),
            Step([ev("ChannelDestroyed", application=APP, channel=chan("MyCustomId$"))],
                 stop=True),
        ],
        adapted="originates to PJSIP/1000 (a lab phone, answering by itself) instead of "
                "PJSIP/1000@endpoint1 (a SIPp peer); the channel is hung up over ARI",
    ),
]
