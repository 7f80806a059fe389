"""Command line for the lab: ``python -m tests.integration.lab up|down|status|logs|cli|phone``.

``up`` leaves Asterisk and the three phones running (for manual exploration) and prints how to
reach them; ``down`` stops them by process id. See ``docs/integration.rst``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import List, Optional

from .errors import LabError
from .lab import LAB_PHONES, Lab, LabConfig
from .phone import Phone


def _lab(args: argparse.Namespace) -> Lab:
    return Lab(LabConfig.from_env(args.instance, port_offset=args.port_offset))


def _print_info(lab: Lab) -> None:
    ari = lab.ari_config
    config = lab.config
    print(f"lab {config.instance}: running, processes {lab.running_processes()}")
    print(f"  ARI:       {ari.url}/ari   user {ari.user}   password {ari.password}")
    print(f"  events:    {ari.ws_url}/ari/events?app={ari.app}   (Stasis app of 7XXX: {ari.app})")
    print(f"  SIP:       udp 127.0.0.1:{config.sip_port}")
    for index, spec in enumerate(LAB_PHONES):
        sip, ctrl, _, _ = config.phone_ports(index)
        print(
            f"  phone {spec.ext} ({spec.name}): SIP udp 127.0.0.1:{sip}, ctrl_tcp 127.0.0.1:{ctrl}"
        )
    print(f"  log:       {lab.log_path}")
    print(f"  root:      {lab.root}")


def _up(args: argparse.Namespace) -> int:
    lab = _lab(args)
    if lab.is_running():
        _print_info(lab)
        return 0
    started = time.monotonic()
    built = lab.provision()
    if built:
        print(f"provisioned the lab root in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    lab.start()
    lab.detach()
    print(f"started in {time.monotonic() - started:.1f} s")
    _print_info(lab)
    return 0


def _down(args: argparse.Namespace) -> int:
    lab = _lab(args)
    running = lab.running_processes()
    lab.stop()
    print(f"lab {lab.config.instance}: stopped {sorted(running) or 'nothing (not running)'}")
    return 0


def _status(args: argparse.Namespace) -> int:
    lab = _lab(args)
    if not lab.is_running():
        print(f"lab {lab.config.instance}: not running (root provisioned: {lab.is_provisioned()})")
        return 1
    _print_info(lab)
    print(f"  endpoints: {lab.endpoint_states()}")
    print(f"  channels:  {lab.channel_ids()}")
    return 0


def _logs(args: argparse.Namespace) -> int:
    sys.stdout.write(_lab(args).log_tail(args.lines))
    return 0


def _cli(args: argparse.Namespace) -> int:
    sys.stdout.write(_lab(args).asterisk_cli(" ".join(args.command)))
    return 0


def _phone(args: argparse.Namespace) -> int:
    lab = _lab(args)
    exts = [spec.ext for spec in LAB_PHONES]
    if args.ext not in exts:
        raise LabError(f"no phone {args.ext}; the lab's phones are {exts}")
    _, ctrl, _, _ = lab.config.phone_ports(exts.index(args.ext))
    name = LAB_PHONES[exts.index(args.ext)].name
    phone = Phone(args.ext, name, ctrl, f"127.0.0.1:{lab.config.sip_port}")
    phone.connect(timeout=5.0)
    try:
        if args.command == "dial" and args.params:
            args.params = [phone.uri(args.params[0])]
        if args.command:
            print(phone.command(args.command, " ".join(args.params)).rstrip())
        deadline = time.monotonic() + args.watch
        shown = 0
        while time.monotonic() < deadline:
            time.sleep(0.1)
            events = phone.events
            for event in events[shown:]:
                print(json.dumps(event.data))
            shown = len(events)
    finally:
        phone.close()
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run the lab command line.

    :param argv: arguments (default ``sys.argv[1:]``).
    :returns: the exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m tests.integration.lab",
        description="Real Asterisk 22 + three baresip phones on 127.0.0.1.",
    )
    parser.add_argument("--instance", default="default", help="lab instance name")
    parser.add_argument(
        "--port-offset", type=int, default=0, help="added to every port (see docs/integration.rst)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the lab does")
    commands = parser.add_subparsers(dest="action", required=True)
    commands.add_parser("up", help="provision if needed, start, and leave running").set_defaults(
        run=_up
    )
    commands.add_parser("down", help="stop the lab's processes").set_defaults(run=_down)
    commands.add_parser("status", help="is it running; ARI credentials").set_defaults(run=_status)
    logs = commands.add_parser("logs", help="tail of Asterisk's full log")
    logs.add_argument("-n", "--lines", type=int, default=100)
    logs.set_defaults(run=_logs)
    cli = commands.add_parser("cli", help="an Asterisk CLI command, e.g. 'core show channels'")
    cli.add_argument("command", nargs="+")
    cli.set_defaults(run=_cli)
    phone = commands.add_parser(
        "phone", help="send a baresip command to a phone, e.g. 'phone 1000 dial 1002'"
    )
    phone.add_argument("ext", help="1000, 1002 or 1006")
    phone.add_argument("command", nargs="?", default="", help="dial, accept, hangup, hold, ...")
    phone.add_argument("params", nargs="*")
    phone.add_argument("--watch", type=float, default=0.0, help="print events for N seconds")
    phone.set_defaults(run=_phone)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args))
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
