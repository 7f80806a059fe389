"""The simulator stands alone: it imports nothing of the SDK outside ``asterisk_cti.sim``."""

from __future__ import annotations

import ast
from pathlib import Path

import asterisk_cti.sim

SIM = Path(asterisk_cti.sim.__file__).parent


def _imports(path: Path) -> list[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    package = ".".join(("asterisk_cti", "sim", *path.relative_to(SIM).parent.parts))
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                found.append(".".join([*base, node.module] if node.module else base))
            else:
                found.append(node.module or "")
    return found


def test_the_simulator_imports_nothing_else_of_the_sdk() -> None:
    files = sorted(SIM.rglob("*.py"))
    assert len(files) > 10
    outside = {
        (str(f.relative_to(SIM)), name)
        for f in files
        for name in _imports(f)
        if name.split(".")[0] == "asterisk_cti" and not name.startswith("asterisk_cti.sim")
    }
    assert outside == set()


def test_relative_imports_resolve_inside_the_simulator() -> None:
    assert "asterisk_cti.sim.pbx" in _imports(SIM / "routes" / "channels.py")
    assert "asterisk_cti.sim.objects" in _imports(SIM / "pbx.py")
