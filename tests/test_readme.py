"""Every Python block in README.md runs as written, so the README cannot rot.

The blocks run in one subprocess, each in a fresh namespace, from a scratch folder laid out as the README
assumes: the repository's ``configs/`` beside it and the shared data at ``../shared/data`` (linked to
``$REUSEGATE_DATA``). The plugin block is the example plugin's module, which must be importable: its source
folder goes on ``PYTHONPATH`` (installing it is tests/test_plugins.py's business).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PLUGIN = REPO / "integrations" / "plugins" / "efficientnet_lite0"
PLUGIN_FILE = PLUGIN / "reusegate_efficientnet_lite0" / "plugin.py"

DRIVER = textwrap.dedent("""
    import contextlib, io, json, sys, traceback
    results = {}
    for line, code in json.load(sys.stdin):
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
            results[line] = [None, printed.getvalue()]
        except BaseException:
            results[line] = [traceback.format_exc(), printed.getvalue()]
    print(json.dumps(results))
""")


def python_blocks() -> List[Tuple[int, str]]:
    """``(line of the opening fence, code)`` of every ```python block."""
    text = README.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)]


BLOCKS = python_blocks()


@pytest.fixture(scope="module")
def block_results(davis_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, list]:
    root = tmp_path_factory.mktemp("readme")
    (root / "repo").mkdir()
    (root / "repo" / "configs").symlink_to(REPO / "configs")
    (root / "shared").mkdir()
    (root / "shared" / "data").symlink_to(davis_root.parent)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN)] + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(BLOCKS), capture_output=True,
                          text=True, env=env, cwd=root / "repo")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_readme_has_the_blocks_it_should():
    codes = [code for _, code in BLOCKS]
    assert len(BLOCKS) >= 4
    assert any("default_gate()" in c for c in codes) and any("register_backbones" in c for c in codes)


@pytest.mark.data
@pytest.mark.parametrize("line", [line for line, _ in BLOCKS], ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_python_block_runs(block_results: Dict[str, list], line: int):
    error, printed = block_results[str(line)]
    assert error is None, f"README.md:{line} failed:\n{error}\nprinted:\n{printed}"
    code = dict(BLOCKS)[line]
    if "print(" in code:  # a block that shows output produced some
        assert printed.strip()


def test_plugin_block_is_the_plugin_module_verbatim():
    """The README shows the example plugin's module as it is (after its path comment), not a sketch of it."""
    (code,) = [code for _, code in BLOCKS if "register_backbones" in code]
    first, rest = code.split("\n", 1)
    assert first == f"# {PLUGIN_FILE.relative_to(REPO)}"
    assert rest == PLUGIN_FILE.read_text()
