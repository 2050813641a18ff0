"""The golden comparisons hold with another CPU's convolution kernels, not just this machine's.

oneDNN picks its float32 kernels by the CPU's instruction set; ``ONEDNN_MAX_CPU_ISA`` caps that choice, which
replays on this machine the reduction orders of an older or smaller CPU (capped at AVX2, an AVX-512 Xeon
reproduces the errors first seen on an AVX2-only AMD EPYC to the digit). On a machine without AVX-512 the
capped run equals the normal one, so this test costs a few seconds and never passes vacuously: it checks that
oneDNN accepted the cap and that the parity files ran.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GOLDEN_TESTS = ("tests/test_frtm_golden.py", "tests/test_frtm_target_model.py", "tests/test_ttvos_golden.py")


PROBE = "import torch\nwith torch.no_grad():\n    torch.nn.Conv2d(8, 8, 3)(torch.randn(1, 8, 64, 64))"


def _dispatched_isa(env: dict) -> str:
    """The instruction set oneDNN reports it dispatches to under ``env`` (its verbose log's info line)."""
    out = subprocess.run([sys.executable, "-c", PROBE], env=dict(env, ONEDNN_VERBOSE="1"), capture_output=True,
                         text=True, timeout=120).stdout
    lines = [ln.split(",cpu,isa:")[1] for ln in out.splitlines() if ln.startswith("onednn_verbose") and ",cpu,isa:" in ln]
    assert lines, "oneDNN printed no ISA line: the cap could not be checked\n" + out[-2000:]
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("isa", ["AVX2", "SSE41"])
def test_golden_parity_with_older_cpu_kernels(golden_frtm, golden_ttvos, isa):
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA=isa, OMP_NUM_THREADS="1")
    dispatched = _dispatched_isa(env)
    assert "AVX-512" not in dispatched and "AVX512" not in dispatched and "AVX10" not in dispatched, dispatched
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *GOLDEN_TESTS],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary, summary
    print(f"[portability] ONEDNN_MAX_CPU_ISA={isa}: oneDNN dispatches to {dispatched}; {summary}")
