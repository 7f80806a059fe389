"""A Tk phone bar on asterisk_cti: one line's state, the other party, the PBX connection, and
Dial / Answer / Hang up / Hold / Retrieve / Transfer buttons enabled from what the SDK says
can be done. Standard library + asterisk_cti only.

    python examples/phonebar.py --sim                  # an embedded simulator, phones answer
    ASTERISK_CTI_URL=http://pbx:8088 ASTERISK_CTI_USERNAME=cti ASTERISK_CTI_PASSWORD=... \\
        python examples/phonebar.py --line PJSIP/1000
    ASTERISK_CTI_BROKER=mqtt://cti:1883 ASTERISK_CTI_SITE=paris ASTERISK_CTI_AGENT=1000 \\
        ASTERISK_CTI_AGENT_PASSWORD=... python examples/phonebar.py --remote --line PJSIP/1000

``--remote`` runs the very same phone bar through the call-centre server (``asterisk-cti
serve``) instead of a direct ARI connection: only the client's construction differs
(:func:`run_remote`; needs ``asterisk-cti[server]``).

Threads: every method of PhoneBar runs on the Tk thread. The SDK's callbacks arrive there
through ``tk_call_soon``, the operations' completions too; nothing here blocks. Lines that
use the SDK end in ``# SDK``; ``# SDK glue`` marks those that only exist because a GUI thread
must never block nor be touched from another thread (count them with grep).
"""

from __future__ import annotations  # noqa: I001 (two lines of SDK names, not one block)

import argparse
import tkinter as tk
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from asterisk_cti import CallListener, ConnectionListener, CtiClient, CtiConfig  # SDK
from asterisk_cti import CallEvent, ConnectionEvent, Direction, Line, LineSnapshotEvent  # SDK
from asterisk_cti.control import Action  # SDK
from asterisk_cti.desktop import tk_call_soon  # SDK

if TYPE_CHECKING:  # the remote client needs paho-mqtt (the server extra): imported when used
    from asterisk_cti.remote import RemoteClient, RemoteConfig  # SDK

BUTTONS = (("Dial", None), ("Answer", Action.ANSWER), ("Hang up", Action.HANGUP),
           ("Hold", Action.HOLD), ("Retrieve", Action.RETRIEVE), ("Transfer", Action.TRANSFER))


class PhoneBar(CallListener, ConnectionListener):  # SDK
    def __init__(self, root: tk.Tk, cti: Union[CtiClient, RemoteClient], line: str) -> None:
        self.cti, self.line, self.last = cti, line, ""
        self.call_soon = tk_call_soon(root)  # SDK glue: a hand-off to the Tk thread
        self.ops = cti.control.nonblocking(self.call_soon)  # SDK glue: futures, callbacks on Tk
        root.title(f"Phone bar {line}")
        self.state = tk.Label(root, font=("TkDefaultFont", 14, "bold"), width=34, anchor="w")
        self.party = tk.Label(root, width=34, anchor="w")
        self.note = tk.Label(root, width=34, anchor="w")  # what the last button did
        self.status = tk.Label(root, fg="gray30", width=34, anchor="w", justify="left",
                               wraplength=420)  # the PBX connection
        self.number = tk.Entry(root, width=14)
        bar = tk.Frame(root)
        self.buttons = {label: tk.Button(bar, text=label, command=self.click(label, action))
                        for label, action in BUTTONS}
        for widget in (self.state, self.party, self.number, bar, self.note, self.status):
            widget.pack(fill="x", padx=6, pady=2)
        for button in self.buttons.values():
            button.pack(side="left")
        self.status["text"] = "connecting..."
        self.paint(None)

    def click(self, label: str, action: Optional[Action]) -> Callable[[], None]:
        return lambda: self.act(label, action)

    def act(self, label: str, action: Optional[Action]) -> None:
        line = self.cti.line(self.line)  # SDK
        conn = line.active_connection if line else None  # SDK
        if action is None:
            future: Future[Any] = self.ops.originate(self.line, self.number.get())  # SDK
        elif action == Action.TRANSFER:
            future = self.ops.transfer(conn, self.number.get())  # SDK
        else:
            future = getattr(self.ops, action.value)(conn)  # SDK
        self.note["text"] = f"{label}..."
        future.add_done_callback(lambda f: self.done(label, f))  # SDK glue: runs on Tk

    def done(self, label: str, future: Future[Any]) -> None:
        error = future.exception()
        self.note["text"] = f"{label} failed: {error}" if error else f"{label}: done"

    def paint(self, line: Optional[Line]) -> None:  # SDK
        conn = line.active_connection if line else None  # SDK
        state = str(conn.phone_state).upper() if conn else "IDLE"  # SDK
        self.state["text"] = state + (f" (last: {self.last})" if self.last else "")
        other = None if conn is None else conn.connected or (  # SDK
            conn.calling if conn.direction == Direction.INCOMING else conn.called)  # SDK
        self.party["text"] = f"{other.name} {other.number}".strip() if other else ""  # SDK
        actions = self.cti.control.actions(conn) if conn else None  # SDK
        for label, action in BUTTONS:
            ok = actions.can(action) if action and actions else action is None  # SDK
            self.buttons[label]["state"] = "normal" if ok else "disabled"

    # the SDK's callbacks, on the Tk thread (add_listener(..., call_soon=tk_call_soon(root)))
    def on_line_snapshot(self, event: LineSnapshotEvent) -> None:  # SDK
        self.paint(event.line)  # SDK

    def on_call_event(self, event: CallEvent) -> None:  # SDK
        if event.kind.value not in ("line_state_changed", "talking_started", "talking_stopped"):
            why = "" if event.reason.value == "normal" else f", {event.reason}"  # SDK
            self.last = f"{event.kind}{why}"  # SDK
        self.paint(self.cti.line(self.line))  # SDK

    def on_connected(self, event: ConnectionEvent) -> None:  # SDK
        self.status["text"] = f"connected (Asterisk {event.asterisk_version})"  # SDK

    def on_disconnected(self, event: ConnectionEvent) -> None:  # SDK
        if event.error is not None:  # SDK: permanent, the client gave up
            self.status["text"] = f"error: {event.error}"  # SDK
        else:
            self.status["text"] = f"PBX down ({event.reason}), retrying"  # SDK


def run(root: tk.Tk, config: CtiConfig, line: str) -> PhoneBar:
    """Build the phone bar in ``root`` and start its client in the background (Tk thread)."""
    return start(PhoneBar(root, CtiClient(config), line))  # SDK


def run_remote(root: tk.Tk, config: RemoteConfig, line: str) -> PhoneBar:
    """The same phone bar through the call-centre server: only the client differs."""
    from asterisk_cti.remote import RemoteClient  # SDK

    return start(PhoneBar(root, RemoteClient(config), line))  # SDK


def start(bar: PhoneBar) -> PhoneBar:
    """Add the bar as listener, watch its line, start its client in the background."""
    bar.cti.add_listener(bar, call_soon=bar.call_soon)  # SDK glue: callbacks on Tk
    bar.cti.monitor(bar.line)  # SDK
    bar.cti.start(wait=False)  # SDK glue: returns at once, retries while the PBX is down
    return bar


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--line", default="PJSIP/1000", help="the line (default PJSIP/1000)")
    parser.add_argument("--app", default="phonebar", help="the ARI application name")
    parser.add_argument("--sim", action="store_true",
                        help="run against an embedded simulator whose phones answer")
    parser.add_argument("--remote", action="store_true",
                        help="through the call-centre server: $ASTERISK_CTI_BROKER, _SITE, "
                        "_AGENT, _AGENT_PASSWORD")
    args = parser.parse_args(argv)
    sim = None
    if args.remote:
        from asterisk_cti.remote import RemoteConfig  # SDK

        root = tk.Tk()
        bar = run_remote(root, RemoteConfig.from_env(), args.line)  # SDK
        try:
            root.mainloop()
        finally:
            bar.cti.stop()  # SDK
        return
    if args.sim:
        from asterisk_cti.sim import AriSimulator  # SDK
        sim = AriSimulator(stasis_app=args.app).start()  # SDK: 7XXX goes through the switch
        for ext in ("1000", "1002", "1006"):
            sim.phone(ext).auto_answer = 2.0  # SDK
        print("simulator, drive it with asterisk-cti sim (--help):",  # noqa: T201
              f"ASTERISK_CTI_URL={sim.url} ASTERISK_CTI_USERNAME={sim.username}",
              f"ASTERISK_CTI_PASSWORD={sim.password}")
        config = CtiConfig(url=sim.url, username=sim.username, password=sim.password,  # SDK
                           app=args.app)
    else:
        config = CtiConfig.from_env(app=args.app)  # SDK
    root = tk.Tk()
    bar = run(root, config, args.line)
    try:
        root.mainloop()
    finally:
        bar.cti.stop()  # SDK
        if sim is not None:
            sim.stop()  # SDK


if __name__ == "__main__":
    main()
