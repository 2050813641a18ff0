"""Every Python block in docs/**/*.md runs as written, and every relative link of README.md and docs/ resolves.

The blocks run as README.md's do (tests/markdown_blocks.py): one subprocess for all of them, each block in a
fresh namespace. A fragment that is not a program is preceded by ``<!-- no-run -->``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

from markdown_blocks import (DOCS, NO_RUN, PLUGIN_FILE, REPO, broken_links, check_result, label, markdown_files,
                             python_blocks, run_blocks)

PAGES = sorted(DOCS.rglob("*.md"))
BLOCKS = [(label(page, line), code) for page in PAGES for line, code in python_blocks(page)]
PLUGINS_PAGE = DOCS / "plugins.md"


@pytest.fixture(scope="module")
def block_results(davis_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, list]:
    return run_blocks(BLOCKS, davis_root, tmp_path_factory.mktemp("docs"))


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(page: Path):
    """Every relative link (and image) of README.md and docs/**/*.md names an existing file (and heading)."""
    assert broken_links(page) == []


def test_no_run_marks_are_rare():
    """Illustrative fragments are the exception: most Python blocks of the docs run."""
    marked = sum(page.read_text().count(NO_RUN) for page in PAGES)
    assert marked <= 3 and len(BLOCKS) >= 4


def test_plugin_block_is_the_plugin_module_verbatim():
    """docs/plugins.md shows the example plugin's module as it is (after its path comment), not a sketch of it."""
    (code,) = [code for _, code in python_blocks(PLUGINS_PAGE) if "register_backbones" in code]
    first, rest = code.split("\n", 1)
    assert first == f"# {PLUGIN_FILE.relative_to(REPO)}"
    assert rest == PLUGIN_FILE.read_text()


@pytest.mark.data
@pytest.mark.parametrize("where,code", BLOCKS, ids=[w for w, _ in BLOCKS])
def test_python_block_runs(block_results: Dict[str, list], where: str, code: str):
    check_result(block_results, where, code)
