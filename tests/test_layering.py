"""The packages import one another only down the layers (README, "Layout"): `wire` (the shared
contract) imports none of ours; the centre (`ingest`, `analytics`, `api`) never imports the
controller's code (`edge_agent`, `controller_fw_sim`, `hardware`); nothing imports `luciole`, the
composition root. Read from the source (every import statement, those inside functions too), so an
import that only runs on some path counts as well."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("wire", "hardware", "controller_fw_sim", "edge_agent", "ingest", "analytics", "api",
            "luciole")

# What each package may import of ours (besides itself). The simulator reads the meters' register
# maps through `hardware.modbus`, their one home (profiles as data files).
MAY_IMPORT: dict[str, frozenset[str]] = {
    "wire": frozenset(),
    "hardware": frozenset({"wire"}),
    "controller_fw_sim": frozenset({"wire", "hardware"}),
    "edge_agent": frozenset({"wire", "hardware"}),
    "ingest": frozenset({"wire", "analytics"}),
    "analytics": frozenset({"wire"}),
    "api": frozenset({"wire", "analytics"}),
    "luciole": frozenset(PACKAGES) - {"luciole"},
}


def imports_of_ours(source: str) -> list[tuple[int, str]]:
    """(line, module) of every absolute import of one of our packages in `source`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.extend((node.lineno, name) for name in names if name.split(".")[0] in PACKAGES)
    return found


def violations(package: str, root: Path = ROOT) -> list[str]:
    allowed = MAY_IMPORT[package] | {package}
    return [f"{path.relative_to(root)}:{line} imports {module}"
            for path in sorted((root / package).rglob("*.py"))
            for line, module in imports_of_ours(path.read_text(encoding="utf-8"))
            if module.split(".")[0] not in allowed]


def test_the_table_covers_every_package() -> None:
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert on_disk == set(MAY_IMPORT)


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    assert violations(package) == []


def test_the_scan_sees_imports_in_functions_and_from_forms(tmp_path: Path) -> None:
    """The checker itself: a forbidden import anywhere in a module is named with its line."""
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "bad.py").write_text(
        "import wire.codec\n"
        "from . import sibling\n"
        "def f():\n"
        "    from edge_agent.schedule import night\n"
        "    import controller_fw_sim.fleet, json\n")
    assert violations("api", tmp_path) == [
        "api/bad.py:4 imports edge_agent.schedule",
        "api/bad.py:5 imports controller_fw_sim.fleet",
    ]
