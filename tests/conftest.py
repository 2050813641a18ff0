"""Shared fixtures. Real-data tests read $REUSEGATE_DATA (default: ../shared/data beside the repository).

Outside CI they skip when the data is absent; with REUSEGATE_REQUIRE_DATA=1 (set by .ci/run) they fail.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("REUSEGATE_DATA", REPO.parent / "shared" / "data"))
GOLDEN = Path(os.environ.get("REUSEGATE_GOLDEN", REPO.parent / "shared" / "golden"))


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        reason = f"{what} not found at {path} (set REUSEGATE_DATA / REUSEGATE_GOLDEN)"
        if os.environ.get("REUSEGATE_REQUIRE_DATA") == "1":
            pytest.fail(reason + "; REUSEGATE_REQUIRE_DATA=1 forbids skipping")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def davis_root() -> Path:
    """The real DAVIS-2016 training sequences (DAVIS layout)."""
    return _require(DATA / "davis2016-train", "DAVIS-2016 train data")


@pytest.fixture(scope="session")
def golden_frtm() -> Path:
    """Tensors produced by the upstream FRTM / Reuse_VOS code (see its MANIFEST.md)."""
    return _require(GOLDEN / "frtm", "FRTM golden tensors")
