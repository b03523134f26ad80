"""The agent carries no JIT compiler: importing it and encoding telemetry leave numba and llvmlite
out of `sys.modules`; the batch-decode kernels load only where decoding is done. Nor does it carry
the provisioning flow's HTTP client and terminal libraries. (`test_agent_gear_live` checks the
running agent process.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
JIT = ("numba", "llvmlite")


def _jit_modules_after(code: str, packages: tuple[str, ...] = JIT) -> set[str]:
    """Run `code` in a fresh interpreter; which of `packages` it left in sys.modules."""
    report = f"import sys; print(' '.join(m for m in {packages!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", f"{code}\n{report}"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.split())


def test_importing_the_agent_loads_no_jit_compiler() -> None:
    code = "import edge_agent.agent, edge_agent.cli, edge_agent.provision, edge_agent.host"
    assert _jit_modules_after(code) == set()


def test_encoding_telemetry_loads_no_jit_compiler() -> None:
    code = """
from edge_agent.telemetry import LuminaireReading, SeqCounter, luminaire_records, payloads
records = luminaire_records([LuminaireReading(1_700_000_000_000_000, 0, level=200)])
assert len(list(payloads(records, 1, SeqCounter(), 50))) == 1
"""
    assert _jit_modules_after(code) == set()


def test_decoding_loads_the_kernels_where_it_is_done() -> None:
    code = """
from edge_agent.telemetry import LuminaireReading, SeqCounter, luminaire_records, payloads
from wire.codec import decode
records = luminaire_records([LuminaireReading(1_700_000_000_000_000, 3, level=200)])
(_, payload), = payloads(records, 1, SeqCounter(), 50)
assert decode(payload).records["luminaire"].tolist() == [3]
"""
    assert _jit_modules_after(code) == set(JIT)


def test_the_agent_command_line_loads_neither_jit_nor_provisioning_libraries() -> None:
    code = """
from edge_agent.cli import main
assert main(["run", "--config", "/nonexistent/agent.json"]) == 2  # a settings error, reported
"""
    assert _jit_modules_after(code, (*JIT, "httpx", "rich", "edge_agent.provision")) == set()
