"""No helper is written twice: every function body in the installed package (``reusegate/``, ``adapters/``,
``integrations/``) is compared with every other after renaming its local names and arguments away, so two copies
of the same resize (``F.interpolate(x, size=like.shape[-2:], ...)`` under two names) count as one body.

Bodies below ``MIN_NODES`` AST nodes (one-line properties such as ``(j + f) / 2``) are too small to be a helper
worth sharing and are left out; the threshold still catches a one-call wrapper with keyword arguments.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("reusegate", "adapters", "integrations")
MIN_NODES = 18


class _Anonymise(ast.NodeTransformer):
    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.copy_location(ast.Name(id="_", ctx=node.ctx), node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        return ast.copy_location(ast.arg(arg="_", annotation=None), node)


def _shape(body: List[ast.stmt]) -> ast.Module:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    module = ast.Module(body=[ast.parse(ast.unparse(s)).body[0] for s in body], type_ignores=[])
    return _Anonymise().visit(module)


def function_bodies(root: Path) -> Dict[str, List[str]]:
    """Anonymised body dump -> the places (``file:line name``) that define it, for bodies of ``MIN_NODES`` or more."""
    found: Dict[str, List[str]] = defaultdict(list)
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            if "integrations/plugins" in path.as_posix():  # separate example distributions
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    shape = _shape(list(node.body))
                    if shape.body and sum(1 for _ in ast.walk(shape)) >= MIN_NODES:
                        found[ast.dump(shape)].append(f"{path.relative_to(root)}:{node.lineno} {node.name}")
    return found


def test_the_detector_catches_a_renamed_copy(tmp_path):
    for folder, name, args in (("reusegate", "_up", "x, like"), ("adapters", "_resize", "t, ref")):
        (tmp_path / folder).mkdir()
        a, b = args.split(", ")
        (tmp_path / folder / "m.py").write_text(
            f"def {name}({args}):\n    return F.interpolate({a}, size={b}.shape[-2:], mode='bilinear', "
            "align_corners=False)\n")
    (tmp_path / "integrations").mkdir()
    assert [len(v) for v in function_bodies(tmp_path).values()] == [2]


def test_no_helper_is_written_twice():
    twice = [places for places in function_bodies(REPO).values() if len(places) > 1]
    assert twice == [], "the same function body is written more than once; keep one and import it: " + "; ".join(
        " = ".join(p) for p in twice)
