"""Packaging: every package is listed for the wheel, the mapped folders import, the CLI is wired."""
from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

from reusegate import cli

REPO = Path(__file__).resolve().parents[1]
MAPPED = {"reusegate": "reusegate", "reusegate.adapters": "adapters", "reusegate.integrations": "integrations"}


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return cfg


def test_every_package_folder_is_listed_in_setup_cfg():
    listed = set(_setup_cfg()["options"]["packages"].split())
    found = set()
    for root_pkg, folder in MAPPED.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            if folder == "integrations" and rel.parts[:1] == ("plugins",):  # separate example distributions
                continue
            found.add(".".join((root_pkg, *rel.parts)))
    assert found == listed, f"missing from setup.cfg: {sorted(found - listed)}; stale: {sorted(listed - found)}"


def test_package_dir_maps_adapters_and_integrations():
    mapping = dict(
        line.split("=") for line in _setup_cfg()["options"]["package_dir"].split("\n") if line.strip()
    )
    assert {k.strip(): v.strip() for k, v in mapping.items()} == MAPPED


def test_core_never_imports_adapters():
    offenders = [
        str(p.relative_to(REPO)) for p in (REPO / "reusegate").rglob("*.py")
        if "reusegate.adapters" in p.read_text() or "from ..adapters" in p.read_text()
    ]
    assert offenders == []


def test_cli_lists_its_commands():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps sub-parsers here
    assert {"demo"} <= set(commands)


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "reusegate.cli", "--help"], capture_output=True, text=True,
                         check=True)
    assert "demo" in out.stdout
