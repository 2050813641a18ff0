"""Training feeds each host the score it gets at run time.

One clip goes through ``ReuseGate.loss`` and through a session with the same gate decisions (the gate's
probability is scripted, both paths see the same sequence), and the score the host's decoder receives on every
frame is compared: the host's own score on computed frames (a previous-mask host's last computed estimate,
FRTM's online-updated target model), ``S(t-n) + delta`` on reused ones. The host-only pre-training loss is
compared with the bare host the same way (TTVOS: with the object's state in both decoder taps).
"""
from __future__ import annotations

from typing import Callable, List, Optional

import pytest
import torch

from reusegate.adapters.frtm.model import FRTM
from reusegate.adapters.frtm.target_model import TargetModelParams
from reusegate.adapters.module_tap.example import TAPS, ExampleVOSNet
from reusegate.adapters.reference import ReferenceHost
from reusegate.adapters.ttvos import TTVOS
from reusegate.core.gate import ReuseGate
from reusegate.core.session import HostRunner
from reusegate.integrations.mmengine.model import HostOnly

H, W, T = 64, 96, 6
RTOL = 1e-5
# Scripted p_reuse for frames 1..5: reuse right after the start (S(t-n) is the first mask), compute, reuse,
# then compute twice: frame 4's score comes from frame 2's estimate, frame 5's from frame 4's.
P_REUSE = (0.9, 0.1, 0.9, 0.1, 0.1)
# train_skipping=2: FRTM's target model re-solves on its 2nd scored frame, so skipped updates would show.
CHEAP = TargetModelParams.inference_fast(num_aug=2, init_iters=(2, 2), update_iters=(2,), train_skipping=2,
                                         fit_resolution="score", memory_size=8)


def _hosts() -> dict:
    return {
        "reference": lambda: (ReferenceHost(width=8, refined_channels=16), "reference"),
        "module_tap": lambda: (ExampleVOSNet(width=8, refined_channels=16), dict(type="module_tap", **TAPS)),
        "frtm": lambda: (FRTM("resnet18", target_params=CHEAP), "frtm"),
        # a stateful decoder: its mask history, template and s16 memory must advance in training as in a session
        "ttvos": lambda: (TTVOS("mobilenet_v2s16"), "ttvos"),
    }


def _clip() -> tuple[torch.Tensor, torch.Tensor]:
    """A textured square drifting over a noisy background: ``[T, 3, H, W]`` in [0, 1] and ``[T, H, W]`` labels."""
    g = torch.Generator().manual_seed(5)
    background = torch.rand(3, H, W, generator=g)
    texture = torch.rand(3, 24, 32, generator=g)
    frames, labels = [], []
    for t in range(T):
        img, lab = background.clone(), torch.zeros(H, W, dtype=torch.long)
        y, x = 16 + t, 20 + 3 * t
        img[:, y:y + 24, x:x + 32] = texture
        lab[y:y + 24, x:x + 32] = 1
        frames.append(img)
        labels.append(lab)
    return torch.stack(frames), torch.stack(labels)


def _record_scores(adapter, refined_seen: Optional[List[torch.Tensor]] = None) -> List[torch.Tensor]:
    """Record the score every ``refine_shallow`` call receives (the one the host decodes with), and in
    ``refined_seen`` the refined feature."""
    seen: List[torch.Tensor] = []
    original = adapter.refine_shallow

    def refine_shallow(feats, score, refined, **kwargs):
        seen.append(score.detach().clone())
        if refined_seen is not None:
            refined_seen.append(refined.detach().clone())
        return original(feats, score, refined, **kwargs)

    adapter.refine_shallow = refine_shallow
    return seen


def _script_gate(gate: ReuseGate) -> Callable[[], int]:
    """Make the gate's probability follow :data:`P_REUSE` call by call, once per pass (session, then loss)."""
    original, calls = gate.gate_modules.match_and_gate, [0]

    def match(feature, prev_score, template, *args):
        d, p = original(feature, prev_score, template, *args)
        calls[0] += 1
        return d, torch.full_like(p, P_REUSE[(calls[0] - 1) % len(P_REUSE)])

    gate.gate_modules.match_and_gate = match
    return lambda: calls[0]


def _assert_close(got: List[torch.Tensor], want: List[torch.Tensor]) -> None:
    assert len(got) == len(want) == T - 1
    for t, (g, w) in enumerate(zip(got, want), start=1):
        assert g.shape == w.shape, t
        err, scale = float((g - w).abs().max()), float(w.abs().max())
        assert err <= RTOL * scale, f"frame {t}: max|train - session| = {err:.3g} (scale {scale:.3g})"


@pytest.mark.parametrize("host, reuse_path",
                         [(h, "translate") for h in sorted(_hosts())]
                         + [("frtm", "hold")])
def test_loss_feeds_the_host_the_scores_a_session_gives_it(host, reuse_path):
    torch.manual_seed(0)
    model, adapter = _hosts()[host]()
    frames, labels = _clip()
    gate = ReuseGate(model, adapter, tau=0.5, reuse_path=reuse_path).eval()  # eval: same BN stats; train_tau 0.5
    refined: List[torch.Tensor] = []
    seen = _record_scores(gate.adapter, refined)
    calls = _script_gate(gate)

    session = gate.session()
    results = [session.step(frames[t], labels[0] if t == 0 else None) for t in range(T)]
    assert [r.reused[1] for r in results[1:]] == [p > 0.5 for p in P_REUSE]
    want, want_refined = list(seen), list(refined)
    seen.clear()
    refined.clear()
    with torch.no_grad():
        out = gate.loss(frames[None], (labels[None, :, None] > 0).float())
    assert calls() == 2 * (T - 1)
    assert float(out["reuse_rate"]) == pytest.approx(sum(p > 0.5 for p in P_REUSE) / (T - 1))
    _assert_close(seen, want)
    _assert_close(refined, want_refined)  # and the refined feature (translated, held or the host's)
    # the run-time scores really follow the estimates: frame 5 is not guided the way frame 2 was
    assert not torch.allclose(want[4], want[1])
    # hold: reused frame 3 decodes with computed frame 2's score as it is; translate adds delta to it
    assert torch.equal(want[2], want[1]) == (reuse_path != "translate")


@pytest.mark.parametrize("host", sorted(_hosts()))
def test_host_only_pretraining_feeds_the_scores_of_the_bare_host(host):
    torch.manual_seed(0)
    model, adapter = _hosts()[host]()
    frames, labels = _clip()
    gate = ReuseGate(model, adapter).eval()
    seen = _record_scores(gate.adapter)
    runner = HostRunner(gate.adapter)
    for t in range(T):
        runner.step(frames[t], labels[0] if t == 0 else None)
    want = list(seen)
    seen.clear()
    with torch.no_grad():
        HostOnly(model, gate.adapter).loss(frames[None], (labels[None, :, None] > 0).float())
    _assert_close(seen, want)
