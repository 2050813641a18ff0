"""Shared fixtures. Real-data tests read $REUSEGATE_DATA (default: ../shared/data beside the repository).

Outside CI they skip when the data is absent; with REUSEGATE_REQUIRE_DATA=1 (set by .ci/run) they fail.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings
from PIL import Image

from reusegate.adapters.reference import ReferenceHost
from reusegate.core.gate import ReuseGate
from reusegate.zoo.catalog import save_gate

# One intra-op thread for the whole suite and its subprocesses: the golden tensors were made on one thread
# (parity is bit-exact there), the test models are small, and subprocess tests (DDP, plugins) would otherwise
# oversubscribe the two cores, which slows small models down by 10-30x.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)

# Fuzzing profiles (tests/test_fuzz.py). Registered here, before hypothesis reads --hypothesis-profile:
# "ci" (default) is small and derandomized, so CI is fast and never flaky; "long" searches for real:
#   pytest tests/test_fuzz.py --hypothesis-profile=long
settings.register_profile("ci", max_examples=12, derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=400, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

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


@pytest.fixture(scope="session")
def golden_ttvos() -> Path:
    """Tensors produced by the upstream TTVOS code (see its MANIFEST.md)."""
    return _require(GOLDEN / "ttvos", "TTVOS golden tensors")


@pytest.fixture(scope="session")
def still_images_root() -> Path:
    """2,173 photographs with palette masks in three sets (ecssd, pennfudan, ccp; see its README)."""
    return _require(DATA / "still-images", "still-image data")


@pytest.fixture(scope="session")
def schoolgirls_root() -> Path:
    """One DAVIS-2017 train sequence with 7 objects at 240p (DAVIS layout)."""
    return _require(DATA / "davis2017-schoolgirls", "DAVIS-2017 schoolgirls data")


# ---------------------------------------------------------------- small inputs shared by the command tests
MINI_SEQUENCES = ("bear", "boat")
MINI_FRAMES = 5
MINI_SIZE = (214, 120)  # W, H


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """An exported untrained reference model whose head predicts foreground almost everywhere (bias +6), so
    J&F is a non-zero number that every code path must reproduce."""
    kwargs = dict(width=8, refined_channels=16, input_scale=0.5)
    gate = ReuseGate(ReferenceHost(**kwargs), "reference")
    with torch.no_grad():
        gate.host.head.bias.fill_(6.0)
    return save_gate(gate, tmp_path_factory.mktemp("model") / "tiny.pth", host="reference", adapter="reference",
                     host_kwargs=kwargs)


@pytest.fixture(scope="session")
def mini_davis(davis_root, tmp_path_factory) -> Path:
    """A DAVIS-layout copy of the first frames of two real sequences at low resolution, with a sequence list."""
    root = tmp_path_factory.mktemp("davis")
    for seq in MINI_SEQUENCES:
        frames = sorted((davis_root / "JPEGImages" / "480p" / seq).iterdir())[:MINI_FRAMES]
        for f in frames:
            for kind, ext, resample in (("JPEGImages", ".jpg", Image.BILINEAR), ("Annotations", ".png", Image.NEAREST)):
                src = davis_root / kind / "480p" / seq / (f.stem + ext)
                dst = root / kind / "480p" / seq / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                Image.open(src).resize(MINI_SIZE, resample).save(dst)
    (root / "list.txt").write_text("\n".join(MINI_SEQUENCES) + "\n")
    return root
