"""``python -m asterisk_cti.sim``: run the ARI simulator standalone until Ctrl-C.

Prints the URL and the (throwaway) credentials; optionally plays scenarios in a loop.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import List, Optional

from . import scenarios
from .server import AriSimulator


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asterisk_cti.sim", description=__doc__)
    parser.add_argument("--port", type=int, default=8088, help="TCP port on 127.0.0.1 (0: any)")
    parser.add_argument("--user", default=None, help="ARI user (default: generated)")
    parser.add_argument("--password", default=None, help="ARI password (default: generated)")
    parser.add_argument("--speed", type=float, default=1.0, help="speed-up factor")
    parser.add_argument("--stasis-app", default="cti-ctl", help="app of the 7XXX extensions")
    parser.add_argument(
        "--channelvars", action="store_true", help="add channelvars CHANNEL(linkedid) to channels"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        choices=sorted(scenarios.SCENARIOS),
        help="play it in a loop",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    sim = AriSimulator(
        port=args.port,
        username=args.user,
        password=args.password,
        speed=args.speed,
        stasis_app=args.stasis_app,
        channelvars=args.channelvars,
    )
    stop = threading.Event()
    with sim:
        out = sys.stdout
        out.write(f"ARI simulator: {sim.url}/ari  (websocket {sim.ws_url})\n")
        out.write(f"user: {sim.username}  password: {sim.password}\n")
        out.write(f"endpoints: {', '.join(sorted(sim.pbx.endpoints))} (Ctrl-C to stop)\n")
        out.flush()
        try:
            while not stop.wait(0 if args.scenario else 3600):
                for name in args.scenario:
                    out.write(f"scenario {name}\n")
                    out.flush()
                    scenarios.SCENARIOS[name](sim)
                    sim.sleep(2)
        except KeyboardInterrupt:
            out.write("stopping\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
