"""Parity with tensors produced by the upstream FRTM / Reuse_VOS code (../shared/golden/frtm, see MANIFEST.md).

The comparison rule (``tests/numeric.py``): ``max|got - want| <= rtol * max|want| + 1e-6``, with

* ``RTOL_ELEMENTWISE`` = 4e-6 for elementwise arithmetic, resizes and data movement (normalisation, nearest and
  bilinear resizes, the bicubic filter's few taps, the merge), where only rounding can differ;
* ``RTOL_CONV`` = 1e-5 for chains of float32 convolutions (backbone, refiner, gate modules, a whole session frame).

Why relative: the golden tensors were made on one CPU; another x86 CPU (an AVX2-only AMD EPYC instead of an
AVX-512 Xeon) sums float32 convolutions in another order, which moves outputs of magnitude 3-20 by up to ~5e-5
absolute: ~1e-6 of their scale. Why still strict: ``test_tolerance_rejects_realistic_bugs`` shows that a swapped
BatchNorm mean/var, a wrong padding mode, an ``align_corners`` slip and an off-by-one resize each exceed the
bound by orders of magnitude, while every comparison below also passes against references perturbed by 1e-6 of
their scale (the ``perturb`` parametrisation replays the whole file that way). Each check prints its absolute and
relative error (``pytest -s`` shows them). Label maps may differ only at near-ties of the reference.
"""
from __future__ import annotations

import dataclasses
import pytest
import torch
import torch.nn.functional as F

from numeric import RTOL_CONV, RTOL_ELEMENTWISE, assert_labels_match, assert_scaled_close, error_ratio
from reusegate.adapters.frtm.adapter import FRTMAdapter
from reusegate.adapters.frtm.backbones import resnet18
from reusegate.adapters.frtm.checkpoints import load_frtm_checkpoint, load_gfrtm_checkpoint
from reusegate.adapters.frtm.model import FRTM
from reusegate.adapters.frtm.refiner import BicubicUpsample2x
from reusegate.core.host import TapSpec
from reusegate.core.layers import GateLayers

# A whole session frame from raw pixels (backbone + refiner, ~50 convolutions) accumulates more reordering than
# one stage: measured 7.1e-6 of the scale with ONEDNN_MAX_CPU_ISA=AVX2, 2.3e-6 with AVX-512 (Xeon, 1 thread).
RTOL_PIPELINE = 3e-5
# The merge's odds softmax (p / (1 - p)) amplifies its inputs' rounding further: merged probabilities are checked
# at this bound (measured 1.24e-5 with AVX2), after the per-object probabilities that feed them.
RTOL_MERGED = 1e-4
PERTURBATION = 1e-6  # of each reference's scale: the rounding level another CPU may add
_perturb = {"scale": 0.0}


def _load(root, name):
    return torch.load(root / name, weights_only=True)


def _taps(f: dict) -> dict:
    """FRTM's feature keys -> reusegate's stride keys."""
    return {"s4": f["layer2"], "s8": f["layer3"], "s16": f["layer4"], "s32": f["layer5"]}


def _perturbed(want: torch.Tensor) -> torch.Tensor:
    """The reference moved by up to ``_perturb['scale']`` of its largest magnitude (seeded, so repeatable)."""
    if not _perturb["scale"] or not want.is_floating_point():
        return want
    gen = torch.Generator().manual_seed(want.numel())
    noise = torch.rand(want.shape, generator=gen, dtype=torch.float64) * 2 - 1
    return (want.double() + noise * _perturb["scale"] * float(want.abs().max())).to(want.dtype)


def _check(name: str, got: torch.Tensor, want: torch.Tensor, rtol: float = RTOL_CONV) -> float:
    return assert_scaled_close(f"golden {name}", got, _perturbed(want), rtol)


@pytest.fixture(autouse=True, params=[0.0, PERTURBATION], ids=["reference", "perturbed-1e-6"])
def perturb(request):
    """Every comparison runs twice: against the golden tensors, and against them perturbed at the 1e-6 level."""
    _perturb["scale"] = request.param
    yield request.param
    _perturb["scale"] = 0.0


@pytest.fixture(autouse=True)
def no_grad():
    with torch.no_grad():
        yield


@pytest.fixture(scope="module")
def backbone_data(golden_frtm):
    return _load(golden_frtm, "backbone_resnet18.pt")


@pytest.fixture(scope="module")
def refiner_data(golden_frtm):
    return _load(golden_frtm, "refiner_rn18.pt")


@pytest.fixture(scope="module")
def greuse_data(golden_frtm):
    return _load(golden_frtm, "greuse_rn18.pt")


@pytest.fixture(scope="module")
def gfrtm(greuse_data):
    """FRTM-RN18 + gate modules with the golden G-FRTM checkpoint loaded (189 keys, strict)."""
    model = FRTM("resnet18").eval()
    gate = GateLayers(TapSpec(match_channels=model.backbone.feature_channels["s8"])).eval()
    load_gfrtm_checkpoint(model.refiner, gate, greuse_data["state_dict"])
    return model, gate


def test_normalisation_and_backbone_features(backbone_data):
    d = backbone_data
    model = FRTM(resnet18(d["state_dict"])).eval()
    _check("norm_weight", model.norm_weight, d["norm_weight"], RTOL_ELEMENTWISE)
    _check("norm_bias", model.norm_bias, d["norm_bias"], RTOL_ELEMENTWISE)
    _check("normalised image", model.normalize(d["image_uint8"].float()), d["image"], RTOL_ELEMENTWISE)
    adapter = FRTMAdapter(model)
    _check("adapter.preprocess (uint8 / 255 in)", adapter.preprocess(d["image_uint8"].float() / 255), d["image"],
           RTOL_ELEMENTWISE)
    feats = adapter.deep(adapter.shallow(d["image"]))
    for tap, want in _taps(d["features"]).items():
        _check(f"backbone {tap}", feats[tap], want)


def test_bicubic_upsampler(refiner_data):
    d = refiner_data["bicubic_test"]
    _check("bicubic 2x", BicubicUpsample2x()(d["input"]), d["output"], RTOL_ELEMENTWISE)


def test_refiner_stages_and_logits(refiner_data):
    d = refiner_data
    model = FRTM("resnet18").eval()
    assert len(d["state_dict"]) == 140
    load_frtm_checkpoint(model.refiner, d["state_dict"])
    feats = _taps(d["features"])
    stages: dict = {}
    refined = model.refiner.forward_deep(feats, d["score"], stages)
    logits = model.refiner.forward_shallow(feats, d["score"], refined, d["image_size"], stages)
    for s in ("32", "16", "8", "4"):
        _check(f"refiner x{s}", stages["s" + s], d["stages"]["x" + s])
    _check("refiner logits", logits, d["logits"])
    assert refined is stages["s16"]


def test_first_frame_template_and_state(gfrtm, greuse_data, backbone_data):
    model, gate = gfrtm
    inp, ff = greuse_data["inputs"], greuse_data["first_frame"]
    feats0 = _taps({"layer2": backbone_data["features"]["layer2"], **inp["features0"]})
    mask = inp["mask0"].float().unsqueeze(0)
    mask8 = F.interpolate(mask, size=feats0["s8"].shape[-2:], mode="nearest")
    _check("mask at s8 (nearest)", mask8, ff["mask0_s8_nearest"], RTOL_ELEMENTWISE)
    _check("template", gate.template_generator(feats0["s8"], mask8), ff["template"])
    _check("S_init (mask at s16, nearest)", F.interpolate(mask, size=(8, 14), mode="nearest"),
           ff["S_init_from_mask"], RTOL_ELEMENTWISE)
    _check("R_init", model.refiner.forward_deep(feats0, inp["S_init_score"]), ff["R_init"])


def test_gate_delta_translator(gfrtm, greuse_data):
    _, gate = gfrtm
    inp, ft = greuse_data["inputs"], greuse_data["frame_t"]
    f8 = inp["features1"]["layer3"]
    up = F.interpolate(inp["S_prev"], size=f8.shape[-2:], mode="bilinear", align_corners=False)
    _check("S_prev up to s8", up, ft["S_prev_up8"], RTOL_ELEMENTWISE)
    _check("matcher conv_key", gate.template_matcher.conv_key(torch.cat([f8, up], 1)), ft["tm_key"])
    _check("matcher conv_feat", gate.template_matcher.conv_feat(torch.cat([f8, up], 1)), ft["tm_feat"])
    tpl_s, p = gate.match_and_gate(f8, inp["S_prev"], greuse_data["first_frame"]["template"])
    _check("matching output tplS", tpl_s, ft["tplS"])
    logit = gate.gate(tpl_s)
    two = ft["gate_logits"][0]
    _check("gate logit (l0 - l1)", logit, (two[0] - two[1]).view(1))
    _check("p_reuse", p.view(()), ft["p_reuse"])
    tau = greuse_data["tau"]
    assert bool(p.item() > tau) == bool(ft["reuse_decision"])
    assert bool(p.item() > 0.5) == bool(ft["gate_hard"][0, 0] == 1)
    delta = gate.delta(tpl_s, inp["S_prev"])
    _check("delta", delta, ft["delta"])
    _check("S_reuse", inp["S_prev"] + delta, ft["S_reuse"])
    _check("R_translated", gate.refine_translator(inp["R_prev"], delta), ft["R_translated"])


def test_reuse_and_compute_paths(gfrtm, greuse_data):
    model, gate = gfrtm
    inp, ft = greuse_data["inputs"], greuse_data["frame_t"]
    adapter = FRTMAdapter(model)
    image = torch.zeros(1, 3, *greuse_data["image_size"])
    feats = {**_taps(inp["features1"]), "image": image}

    stages: dict = {}
    refined = gate.refine_translator(inp["R_prev"], ft["delta"])
    logits = model.refiner.forward_shallow(feats, inp["S_prev"] + ft["delta"], refined, image.shape[-2:], stages)
    _check("reuse x8", stages["s8"], ft["reuse_stages"]["x8"])
    _check("reuse x4", stages["s4"], ft["reuse_stages"]["x4"])
    _check("reuse-path logits", logits, ft["logits_reuse"])
    _check("reuse-path logits via adapter.refine_shallow",
           adapter.refine_shallow(feats, inp["S_prev"] + ft["delta"], refined), ft["logits_reuse"])

    r_new = adapter.refine_deep(feats, inp["S_compute"])
    _check("R_new (compute x16)", r_new, ft["R_new"])
    stages = {}
    model.refiner.forward_deep(feats, inp["S_compute"], stages)
    logits = model.refiner.forward_shallow(feats, inp["S_compute"], r_new, image.shape[-2:], stages)
    for s in ("32", "16", "8", "4"):
        _check(f"compute x{s}", stages["s" + s], ft["compute_stages"]["x" + s])
    _check("compute-path logits", adapter.refine_shallow(feats, inp["S_compute"], r_new), ft["logits_compute"])


def test_merge(golden_frtm):
    d = _load(golden_frtm, "merge.pt")
    model = FRTM("resnet18")
    merged, labels = FRTMAdapter(model).merge(d["probs"])
    _check("merge: merged slots", merged, d["merged"], RTOL_ELEMENTWISE)
    assert_labels_match("merge: first-pass argmax", labels, d["first_pass_argmax"], d["merged"])
    _, upstream = FRTMAdapter(model, label_rule="upstream").merge(d["probs"])
    # upstream's rule thresholds the merged value at 0.5; no reference value lies within 100x rounding of it, so
    # the label maps must be equal on any CPU
    assert float((d["merged"].max(0).values - 0.5).abs().min()) > 1e-4  # measured: 1.6e-4
    assert torch.equal(upstream, d["labels"].long())
    differ = int((labels != upstream).sum())
    print(f"[golden] merge: {differ} pixels differ between label rules 'argmax' and 'upstream'")
    assert differ > 0


def test_reuse_gate_session_reproduces_upstream_frames(greuse_data, backbone_data):
    """The whole wiring (core session + adapter + loaded checkpoint) on the golden frames.

    The target model is the one part not covered by these tensors (upstream used stand-in scores), so the
    adapter's score provider returns those stand-ins; after the start frame the caches are set to the golden
    ``S_prev`` / ``R_prev`` / template as upstream's were (with the session's own template, 1.5e-8 away, the
    reuse frame's merged probabilities differ by ~3e-6: the odds softmax amplifies rounding near p = 1).
    """
    from reusegate.adapters.frtm.checkpoints import load_gfrtm_into
    from reusegate.core.gate import ReuseGate
    from reusegate.core.host import soft_aggregate

    inp, ff, ft = greuse_data["inputs"], greuse_data["first_frame"], greuse_data["frame_t"]
    model = FRTM(resnet18(backbone_data["state_dict"]))
    gate = load_gfrtm_into(ReuseGate(model, "frtm", tau=greuse_data["tau"]), greuse_data["state_dict"])
    adapter = gate.adapter
    adapter.start_object = lambda feats, mask: "stand-in target model"
    adapter.advance = lambda state, feats, prob, computed: None
    results, sessions = {}, {}
    for name, tau, score in (("reuse", greuse_data["tau"], None), ("compute", 0.99, inp["S_compute"])):
        scores = iter([inp["S_init_score"], score])
        adapter.score = lambda state, feats: next(scores)
        session = gate.session(dataclasses.replace(gate.config, tau=tau))
        session.step(inp["image0_uint8"][0], inp["mask0"][0].long())
        obj = session.objects[1]
        _check(f"session start: template ({name})", obj.template, ff["template"])
        _check(f"session start: S(t-n) = mask at s16 ({name})", obj.score, ff["S_init_from_mask"], RTOL_ELEMENTWISE)
        _check(f"session start: R(t-n) = R_init ({name})", obj.refined, ff["R_init"], RTOL_PIPELINE)
        obj.score, obj.refined, obj.template = inp["S_prev"], inp["R_prev"], ff["template"]
        results[name] = session.step(inp["image1_uint8"][0])
        sessions[name] = session

    reuse = results["reuse"]
    assert reuse.reused[1] and not reuse.deep_computed
    _check("session reuse frame: p_reuse", torch.tensor(reuse.p_reuse[1]), ft["p_reuse"])
    reuse_prob = sessions["reuse"].objects[1].last_prob
    _check("session reuse frame: object probability", reuse_prob.view(-1), torch.sigmoid(ft["logits_reuse"]).view(-1),
           RTOL_PIPELINE)
    want, want_labels = soft_aggregate(torch.sigmoid(ft["logits_reuse"][0]))
    _check("session reuse frame: merged probabilities", reuse.probs, want, RTOL_MERGED)
    assert_labels_match("session reuse frame: labels", reuse.labels, want_labels, want)

    compute = results["compute"]
    assert not compute.reused[1] and compute.deep_computed
    compute_prob = sessions["compute"].objects[1].last_prob
    _check("session computed frame: object probability", compute_prob.view(-1),
           torch.sigmoid(ft["logits_compute"]).view(-1), RTOL_PIPELINE)
    want, want_labels = soft_aggregate(torch.sigmoid(ft["logits_compute"][0]))
    _check("session computed frame: merged probabilities", compute.probs, want, RTOL_MERGED)
    assert_labels_match("session computed frame: labels", compute.labels, want_labels, want)


def _swapped(state: dict, key: str, other: str) -> dict:
    out = dict(state)
    out[key], out[other] = state[other], state[key]
    return out


def test_tolerance_rejects_realistic_bugs(backbone_data, greuse_data):
    """The tolerances above cannot hide a modelling error: rounding-level noise passes the same check that each
    of these real bugs fails, by a wide margin (the printed ratio is error / bound; <= 1 passes). It compares
    against the unperturbed references in both parametrisations."""
    d, inp, ft = backbone_data, greuse_data["inputs"], greuse_data["frame_t"]
    want = d["features"]["layer3"]

    def s8(state: dict = d["state_dict"], tweak=lambda net: None) -> torch.Tensor:
        net = resnet18(state).eval()
        tweak(net)
        return FRTMAdapter(FRTM(net).eval()).shallow(d["image"])["s8"]

    def bn_eps(net: torch.nn.Module) -> None:
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eps = 1e-3

    noise = torch.rand(want.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ratios = {"1e-6-relative noise": error_ratio(want + noise * PERTURBATION * want.abs().max(), want),
              "float64 rounding of the reference": error_ratio(want.double(), want)}
    assert all(r <= 1 for r in ratios.values()), ratios
    bugs = {
        "BN running mean/var swapped (layer2.0.bn1)": error_ratio(
            s8(_swapped(d["state_dict"], "layer2.0.bn1.running_mean", "layer2.0.bn1.running_var")), want),
        "BN weight/bias swapped (layer2.1.bn2)": error_ratio(
            s8(_swapped(d["state_dict"], "layer2.1.bn2.weight", "layer2.1.bn2.bias")), want),
        "BN eps 1e-3 instead of 1e-5 (everywhere)": error_ratio(s8(tweak=bn_eps), want),
        "stem conv padded by replication, not zeros": error_ratio(
            s8(tweak=lambda net: setattr(net.conv1, "padding_mode", "replicate")), want),
    }
    size = ft["S_prev_up8"].shape[-2:]
    up = lambda **kw: F.interpolate(inp["S_prev"], **kw, mode="bilinear")  # noqa: E731
    bugs["S_prev resized with align_corners=True"] = error_ratio(up(size=size, align_corners=True), ft["S_prev_up8"],
                                                                 RTOL_ELEMENTWISE)
    bugs["S_prev resized one pixel too wide, then cropped"] = error_ratio(
        up(size=(size[0], size[1] + 1), align_corners=False)[..., : size[1]], ft["S_prev_up8"], RTOL_ELEMENTWISE)
    for name, ratio in {**ratios, **bugs}.items():
        print(f"[golden] {name}: error / bound = {ratio:.3g}")
    assert all(r > 100 for r in bugs.values()), bugs
