"""The README's ten-line example works as written (against the embedded simulator)."""

from __future__ import annotations

import contextlib
import io
import re
from typing import Any

from asterisk_cti.sim import AriSimulator, scenarios
from tests.conftest import REPO


def test_readme_example_pops_the_caller_on_a_simulated_call() -> None:
    text = (REPO / "README.md").read_text()
    code = re.search(r"## Ten lines\s+```python\n(.*?)```", text, re.S)
    assert code is not None, "the README lost its example"
    source = code.group(1)
    with AriSimulator(speed=20) as sim:
        # point the example at the simulator; its input() plays a call instead of waiting
        source = re.sub(r'url="[^"]*"', f'url="{sim.url}"', source)
        source = re.sub(r'username="[^"]*"', f'username="{sim.username}"', source)
        source = re.sub(r'password="[^"]*"', f'password="{sim.password}"', source)

        def play(prompt: str = "") -> str:
            scenarios.basic(sim)
            cti = namespace["cti"]
            cti.wait_idle(10)
            return ""

        namespace: dict[str, Any] = {"input": play, "__name__": "readme"}
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(source, "README.md", "exec"), namespace)
    assert "PJSIP/1002 rings: 1000 Kai" in out.getvalue()
