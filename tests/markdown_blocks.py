"""Shared by tests/test_readme.py and tests/test_docs.py: find the ```python blocks and the relative links of
the Markdown files, and run the blocks as a reader would.

The blocks of one file run in one subprocess, each in a fresh namespace, from a scratch folder laid out as the
texts assume: the repository's ``configs/`` beside it and the shared data at ``../shared/data`` (linked to
``$REUSEGATE_DATA``). The plugin block (docs/plugins.md) is the example plugin's module, which must be
importable: its source folder goes on ``PYTHONPATH`` (installing it is tests/test_plugins.py's business).

A ```python block that is an illustrative fragment, not a program, is preceded by the line ``<!-- no-run -->``
(invisible on GitHub); keep that rare.
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

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
PLUGIN = REPO / "integrations" / "plugins" / "efficientnet_lite0"
PLUGIN_FILE = PLUGIN / "reusegate_efficientnet_lite0" / "plugin.py"
NO_RUN = "<!-- no-run -->"

DRIVER = textwrap.dedent("""
    import contextlib, io, json, sys, traceback
    results = {}
    for label, code in json.load(sys.stdin):
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(code, label, "exec"), {"__name__": "__readme__"})
            results[label] = [None, printed.getvalue()]
        except BaseException:
            results[label] = [traceback.format_exc(), printed.getvalue()]
    print(json.dumps(results))
""")

_FENCE = re.compile(r"^```python\n(.*?)^```$", flags=re.S | re.M)


def markdown_files() -> List[Path]:
    """README.md and every page under docs/."""
    return [README] + sorted(DOCS.rglob("*.md"))


def label(path: Path, line: int) -> str:
    """``docs/quickstart.md:12``: the file (relative to the repository) and the line of the opening fence."""
    return f"{path.relative_to(REPO).as_posix()}:{line}"


def python_blocks(path: Path) -> List[Tuple[int, str]]:
    """``(line of the opening fence, code)`` of every ```python block of ``path`` not marked ``<!-- no-run -->``."""
    text = path.read_text()
    blocks = []
    for m in _FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if before.strip() != NO_RUN:
            blocks.append((line, m.group(1)))
    return blocks


def run_blocks(blocks: List[Tuple[str, str]], davis_root: Path, scratch: Path) -> Dict[str, list]:
    """Run ``(label, code)`` blocks in one subprocess from ``scratch``; ``{label: [traceback or None, stdout]}``."""
    (scratch / "repo").mkdir()
    (scratch / "repo" / "configs").symlink_to(REPO / "configs")
    (scratch / "shared").mkdir()
    (scratch / "shared" / "data").symlink_to(davis_root.parent)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN)] + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(blocks), capture_output=True,
                          text=True, env=env, cwd=scratch / "repo")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_result(results: Dict[str, list], where: str, code: str) -> None:
    """The block at ``where`` ran without an error, and printed something if it calls ``print``."""
    error, printed = results[where]
    assert error is None, f"{where} failed:\n{error}\nprinted:\n{printed}"
    if "print(" in code:  # a block that shows output produced some
        assert printed.strip(), f"{where} printed nothing"


_CODE = re.compile(r"^(```|~~~).*?^\1\s*$", flags=re.S | re.M)
_INLINE = re.compile(r"(`+)(?:(?!\1).)+?\1", flags=re.S)
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def relative_links(path: Path) -> List[Tuple[int, str]]:
    """``(line, target)`` of every relative Markdown link or image of ``path`` (outside code), anchors included."""
    text = path.read_text()
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # keep line numbers
    text = _INLINE.sub(blank, _CODE.sub(blank, text))
    links = []
    for m in _LINK.finditer(text):
        target = m.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, https:, mailto:, ...
            continue
        links.append((text.count("\n", 0, m.start()) + 1, target))
    return links


def heading_anchors(path: Path) -> set:
    """GitHub's anchors of the headings of ``path`` (lower case; punctuation dropped; spaces become hyphens)."""
    text = _CODE.sub("", path.read_text())
    anchors, seen = set(), {}
    for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def broken_links(path: Path) -> List[str]:
    """``file:line: target (why)`` for each relative link of ``path`` whose file or heading does not exist."""
    broken = []
    for line, target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{label(path, line)}: {target}"
        if not dest.exists():
            broken.append(f"{where} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest):
            broken.append(f"{where} (no heading #{anchor} in {dest.relative_to(REPO).as_posix()})")
    return broken
