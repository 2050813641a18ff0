"""Every Python block in README.md runs as written, so the README cannot rot.

The blocks run in one subprocess, each in a fresh namespace, from a scratch folder laid out as the README
assumes (tests/markdown_blocks.py, shared with tests/test_docs.py, which does the same for docs/ and checks
the links of both).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

from markdown_blocks import README, broken_links, check_result, label, python_blocks, run_blocks

BLOCKS = python_blocks(README)
LABELS = [label(README, line) for line, _ in BLOCKS]


@pytest.fixture(scope="module")
def block_results(davis_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, list]:
    blocks = [(label(README, line), code) for line, code in BLOCKS]
    return run_blocks(blocks, davis_root, tmp_path_factory.mktemp("readme"))


def test_the_readme_has_the_blocks_it_should():
    """A front door: one short quick start with the default model, not a manual."""
    codes = [code for _, code in BLOCKS]
    assert len(BLOCKS) >= 1
    assert any("default_gate(" in c and "session.step(" in c for c in codes)
    assert len(README.read_text().splitlines()) <= 250


def test_the_readme_links_resolve():
    assert broken_links(README) == []


@pytest.mark.data
@pytest.mark.parametrize("where,code", [(w, c) for w, (_, c) in zip(LABELS, BLOCKS)], ids=LABELS)
def test_python_block_runs(block_results: Dict[str, list], where: str, code: str):
    check_result(block_results, where, code)
