"""``python -m asterisk_cti.sim``: run the ARI simulator standalone until Ctrl-C.

Listens on 127.0.0.1, port 8088 by default (``--port 0``: any free port). Prints the URL and the
(throwaway) credentials; optionally plays scenarios in a loop. The admin REST (``/sim/...``)
drives its phones and an outside caller from another process. A taken port is one line on
stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from . import scenarios
from .console import serve
from .server import DEFAULT_PORT


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asterisk_cti.sim", description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"TCP port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any)")
    parser.add_argument("--user", default=None, help="ARI user (default: generated)")
    parser.add_argument("--password", default=None, help="ARI password (default: generated)")
    parser.add_argument("--speed", type=float, default=1.0, help="speed-up factor")
    parser.add_argument("--stasis-app", default="cti-ctl", help="app of the 7XXX extensions")
    parser.add_argument(
        "--channelvars", action="store_true",
        help="add the lab's channelvars (CHANNEL(linkedid), CTI_DATA) to channels"
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
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0 to 65535")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    return serve(
        sys.stdout,
        sys.stderr,
        prog=parser.prog,
        port=args.port,
        username=args.user,
        password=args.password,
        speed=args.speed,
        stasis_app=args.stasis_app,
        channelvars=args.channelvars,
        play=args.scenario,
    )


if __name__ == "__main__":
    raise SystemExit(main())
