"""Parity with tensors produced by the upstream FRTM / Reuse_VOS code (../shared/golden/frtm, see MANIFEST.md).

Everything runs on one thread, as the golden data were made: on two threads the convolutions sum in another
order and the deepest refiner outputs move by up to ~9e-6 (magnitudes ~20). Each test prints its max abs error
(``pytest -s`` shows them).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reusegate.adapters.frtm.adapter import FRTMAdapter
from reusegate.adapters.frtm.backbones import resnet18
from reusegate.adapters.frtm.checkpoints import load_frtm_checkpoint, load_gfrtm_checkpoint
from reusegate.adapters.frtm.model import FRTM
from reusegate.adapters.frtm.refiner import BicubicUpsample2x
from reusegate.host import TapSpec
from reusegate.modules import GateModules

TOL = 1e-5  # feed-forward parts


def _load(root, name):
    return torch.load(root / name, weights_only=True)


def _taps(f: dict) -> dict:
    """FRTM's feature keys -> reusegate's stride keys."""
    return {"s4": f["layer2"], "s8": f["layer3"], "s16": f["layer4"], "s32": f["layer5"]}


def _check(name: str, got: torch.Tensor, want: torch.Tensor, tol: float = TOL) -> float:
    assert got.shape == want.shape, f"{name}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    err = (got.float() - want.float()).abs().max().item()
    print(f"[golden] {name}: max abs error {err:.3g}")
    assert err <= tol, f"{name}: max abs error {err} > {tol}"
    return err


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
    gate = GateModules(TapSpec(match_channels=model.backbone.feature_channels["s8"])).eval()
    load_gfrtm_checkpoint(model.refiner, gate, greuse_data["state_dict"])
    return model, gate


def test_normalisation_and_backbone_features(backbone_data):
    d = backbone_data
    model = FRTM(resnet18(d["state_dict"])).eval()
    _check("norm_weight", model.norm_weight, d["norm_weight"], 0.0)
    _check("norm_bias", model.norm_bias, d["norm_bias"], 0.0)
    _check("normalised image", model.normalize(d["image_uint8"].float()), d["image"], 0.0)
    adapter = FRTMAdapter(model)
    _check("adapter.preprocess (uint8 / 255 in)", adapter.preprocess(d["image_uint8"].float() / 255), d["image"], 1e-6)
    feats = adapter.deep(adapter.shallow(d["image"]))
    for tap, want in _taps(d["features"]).items():
        _check(f"backbone {tap}", feats[tap], want)


def test_bicubic_upsampler(refiner_data):
    d = refiner_data["bicubic_test"]
    _check("bicubic 2x", BicubicUpsample2x()(d["input"]), d["output"], 0.0)


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
    _check("mask at s8 (nearest)", mask8, ff["mask0_s8_nearest"], 0.0)
    _check("template", gate.template_generator(feats0["s8"], mask8), ff["template"])
    _check("S_init (mask at s16, nearest)", F.interpolate(mask, size=(8, 14), mode="nearest"),
           ff["S_init_from_mask"], 0.0)
    _check("R_init", model.refiner.forward_deep(feats0, inp["S_init_score"]), ff["R_init"])


def test_gate_delta_translator(gfrtm, greuse_data):
    _, gate = gfrtm
    inp, ft = greuse_data["inputs"], greuse_data["frame_t"]
    f8 = inp["features1"]["layer3"]
    up = F.interpolate(inp["S_prev"], size=f8.shape[-2:], mode="bilinear", align_corners=False)
    _check("S_prev up to s8", up, ft["S_prev_up8"], 0.0)
    _check("matcher conv_key", gate.template_matcher.conv_key(torch.cat([f8, up], 1)), ft["tm_key"])
    _check("matcher conv_feat", gate.template_matcher.conv_feat(torch.cat([f8, up], 1)), ft["tm_feat"])
    tpl_s, p = gate.match(f8, inp["S_prev"], greuse_data["first_frame"]["template"])
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
    _check("merge: merged slots", merged, d["merged"], 1e-7)
    assert torch.equal(labels, d["first_pass_argmax"])
    _, upstream = FRTMAdapter(model, label_rule="upstream").merge(d["probs"])
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
    from reusegate.gate import ReuseGate
    from reusegate.host import soft_aggregate

    inp, ff, ft = greuse_data["inputs"], greuse_data["first_frame"], greuse_data["frame_t"]
    model = FRTM(resnet18(backbone_data["state_dict"]))
    gate = load_gfrtm_into(ReuseGate(model, "frtm", tau=greuse_data["tau"]), greuse_data["state_dict"])
    adapter = gate.adapter
    adapter.start_object = lambda feats, mask: "stand-in target model"
    adapter.learn = lambda state, feats, prob: None
    results = {}
    for name, tau, score in (("reuse", greuse_data["tau"], None), ("compute", 0.99, inp["S_compute"])):
        gate.tau = tau
        scores = iter([inp["S_init_score"], score])
        adapter.score = lambda state, feats: next(scores)
        session = gate.session()
        session.step(inp["image0_uint8"][0], inp["mask0"][0].long())
        obj = session.objects[1]
        _check(f"session start: template ({name})", obj.template, ff["template"])
        _check(f"session start: S(t-n) = mask at s16 ({name})", obj.score, ff["S_init_from_mask"], 0.0)
        _check(f"session start: R(t-n) = R_init ({name})", obj.refined, ff["R_init"])
        obj.score, obj.refined, obj.template = inp["S_prev"], inp["R_prev"], ff["template"]
        results[name] = session.step(inp["image1_uint8"][0])

    reuse = results["reuse"]
    assert reuse.reused[1] and not reuse.deep_computed
    assert abs(reuse.p_reuse[1] - ft["p_reuse"].item()) < 1e-6
    want, want_labels = soft_aggregate(torch.sigmoid(ft["logits_reuse"][0]))
    _check("session reuse frame: merged probabilities", reuse.probs, want)
    assert torch.equal(reuse.labels, want_labels)

    compute = results["compute"]
    assert not compute.reused[1] and compute.deep_computed
    want, want_labels = soft_aggregate(torch.sigmoid(ft["logits_compute"][0]))
    _check("session computed frame: merged probabilities", compute.probs, want)
    assert torch.equal(compute.labels, want_labels)
