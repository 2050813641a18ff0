"""Parity with tensors produced by the upstream TTVOS code (../shared/golden/ttvos, see its MANIFEST.md).

Rule: ``max|got - want| <= rtol * max|want| + atol`` (float32 sums change order across x86 CPUs, so an error means
something only relative to the tensor's scale). Classes:

* ``ELEMENTWISE`` = 4e-6: pooling, the merge, the template blend, data movement;
* ``CONV`` = 1e-5: one module (a few convolutions) fed the golden inputs;
* ``PIPELINE`` = 3e-5: chains from raw pixels (a whole backbone, a whole video). The golden float32 features of
  ResNet-50-s16 are themselves 1.4e-5 of their scale away from a float64 run of the same weights (ours: 1.2e-5).

Each check prints its relative error (``pytest -s``). Label maps may differ only at near-ties of the reference.
"""
from __future__ import annotations

import pytest
import torch

from numeric import assert_scaled_close
from reusegate.adapters.ttvos import TTVOS, load_ttvos_checkpoint
from reusegate.adapters.ttvos.backbones import resnet18s16, resnet50s16
from reusegate.adapters.ttvos.losses import LossOptions, clip_losses
from reusegate.adapters.ttvos.model import TTVOSState, pad16, pool_mask, two_channel
from reusegate.adapters.ttvos.video import aggregate, segment_video

ELEMENTWISE, CONV, PIPELINE = 4e-6, 1e-5, 3e-5
ATOL = 1e-7


def _close(name: str, got: torch.Tensor, want: torch.Tensor, rtol: float, scale: float | None = None) -> float:
    """The suite's scale-relative rule (``tests/numeric.py``) with this file's floor ``ATOL``."""
    return assert_scaled_close(f"ttvos golden {name}", got, want, rtol, ATOL, scale)


def _labels_match(name: str, got: torch.Tensor, want: torch.Tensor, slots: torch.Tensor) -> None:
    """Equal label maps, except where the reference's two best slots are within 1e-4 (rounding may flip them)."""
    top2 = slots.double().topk(2, dim=0).values
    bad = int(((got != want) & ((top2[0] - top2[1]) > 1e-4)).sum())
    print(f"[ttvos golden] {name}: {int((got != want).sum())} labels differ, {bad} away from a near-tie")
    assert bad == 0


@pytest.fixture(scope="module")
def eval_data(golden_ttvos):
    return torch.load(golden_ttvos / "ttvos_rn18_eval.pt", weights_only=True)


@pytest.fixture(scope="module")
def train_data(golden_ttvos):
    return torch.load(golden_ttvos / "ttvos_rn18_train.pt", weights_only=True)


@pytest.fixture(scope="module")
def model(eval_data) -> TTVOS:
    return load_ttvos_checkpoint(TTVOS("resnet18s16"), eval_data["state_dict"]).eval()


@pytest.mark.parametrize("name, factory", [("resnet18s16", resnet18s16), ("resnet50s16", resnet50s16)])
def test_backbone_features(golden_ttvos, name, factory):
    data = torch.load(golden_ttvos / f"backbone_{name}.pt", weights_only=True)
    net = factory(data["state_dict"]).eval()  # strict torchvision-name load
    with torch.no_grad():
        feats = net.forward_deep(net.forward_shallow(data["image"]))
    assert sorted(feats) == ["s16", "s4", "s8"]
    for key in ("s4", "s8", "s16"):
        _close(f"{name} {key}", feats[key], data["features"][key], PIPELINE)
    strided = {n: [list(m.stride), list(m.dilation), list(m.padding)] for n, m in net.named_modules()
               if isinstance(m, torch.nn.Conv2d) and (m.stride != (1, 1) or m.dilation != (1, 1))}
    want = {n: [c["stride"], c["dilation"], c["padding"]] for n, c in data["non_default_convs"].items()}
    assert strided == want


def test_input_normalisation_and_padding(model, eval_data):
    inputs = eval_data["inputs"]
    x = model.normalize(inputs["images_uint8"].float() / 255)
    assert torch.equal(x, inputs["images"][0])  # (x / 255 - mean) / std, bit for bit
    padded, pad = pad16(x[:1])
    assert list(pad) == inputs["padding_lrtb"] and list(padded.shape[-2:]) == inputs["padded_size"]
    assert torch.equal(padded, inputs["frame0_padded"])
    label = pad16(inputs["given_labels"][2].float())[0].to(torch.uint8)
    assert torch.equal(label, inputs["given_label2_padded"])


def test_video_features(model, eval_data):
    inputs = eval_data["inputs"]
    with torch.no_grad():
        for frame, want in eval_data["features"].items():
            feats = model.features(pad16(model.normalize(inputs["images_uint8"][frame:frame + 1].float() / 255))[0])
            for key in ("s4", "s8", "s16"):
                _close(f"frame {frame} {key}", feats[key], want[key], PIPELINE)


def test_init_states(model, eval_data):
    inputs, feats0 = eval_data["inputs"], eval_data["features"][0]
    for item in eval_data["init"]:
        frame = 0 if item["object"] == 1 else 2
        label = pad16(inputs["given_labels"][frame].float())[0]
        with torch.no_grad():
            state = model.start(feats0, two_channel((label == item["object"]).float()))
            if "gcm_key" in item:
                x = model.query_input(feats0["s8"], state.history)
                _close("init gcm key", model.gcm.conv_key(x), item["gcm_key"], CONV)
                _close("init gcm val", model.gcm.conv_val(x), item["gcm_val"], CONV)
        _close(f"init obj {item['object']} history", state.history, item["prev_seg"], ELEMENTWISE)
        _close(f"init obj {item['object']} template", state.template, item["gc"], CONV)


def test_steps_from_golden_inputs(model, eval_data):
    """Each decoder pass, fed the golden state and features: every intermediate the MANIFEST lists."""
    for step in eval_data["steps"]:
        feats = eval_data["features"][step["frame"]]
        state = TTVOSState(step["prev_seg_in"], step["gc_in"], eval_data["features"][step["s16_memory_frame"]]["s16"])
        tag = f"frame {step['frame']} obj {step['object']}"
        _close(f"{tag} prev_seg_s16", pool_mask(step["prev_seg_in"], 1), step["prev_seg_s16"], ELEMENTWISE)
        with torch.no_grad():
            u16, short = model.short_term(state, feats["s16"])
            out = model.decode(state, feats, step["u16"])
        _close(f"{tag} short_term", short, step["short_term"], CONV)
        _close(f"{tag} u16", u16, step["u16"], CONV)
        for got, key in ((out.out_16, "out_16"), (out.query_feat, "query_feat"), (out.attention, "gc_act"),
                         (out.lt_sim, "LT_sim"), (out.update_w, "update_W"), (out.u8, "u8"), (out.out_8, "out_8"),
                         (out.logits, "logits")):
            _close(f"{tag} {key}", got, step[key], CONV)
        _close(f"{tag} probs", torch.softmax(step["logits"], dim=1), step["probs"], ELEMENTWISE)


def test_merge_rule(eval_data):
    probs = {(s["frame"], s["object"]): s["probs"][0] for s in eval_data["steps"]}
    for item in eval_data["merge"]:
        ids = item["object_ids"]
        merged = aggregate(torch.stack([probs[item["frame"], o][1] for o in ids]),
                           torch.stack([probs[item["frame"], o][0] for o in ids]))
        for k, oid in enumerate(ids):
            want = item["aggregated"][oid][0]
            _close(f"merge frame {item['frame']} obj {oid}", torch.stack([1 - merged[k + 1], merged[k + 1]]), want,
                   ELEMENTWISE)
        labels = torch.tensor([0] + ids)[merged.argmax(dim=0)]
        _labels_match(f"merge frame {item['frame']}", labels, item["labels"][0, 0].long(), merged)


def test_updates(model, eval_data):
    aggregated = {(m["frame"], o): a for m in eval_data["merge"] for o, a in m["aggregated"].items()}
    for item in eval_data["updates"]:
        state = TTVOSState(item["prev_seg_in"], item["gc_in"], eval_data["features"][0]["s16"])
        feats = eval_data["features"][item["frame"]]
        with torch.no_grad():
            model.push_history(state, aggregated[item["frame"], item["object"]])
            fresh = model.fresh_template(state, feats["s8"])
        tag = f"update frame {item['frame']} obj {item['object']}"
        _close(f"{tag} history", state.history, item["prev_seg_out"], ELEMENTWISE)
        _close(f"{tag} fresh template", fresh, item["template_fresh"], CONV)
        blended = model.blend_template(item["gc_in"], item["template_fresh"], item["update_W"])
        _close(f"{tag} blended template", blended, item["gc_out"], ELEMENTWISE)


def test_whole_video_upstream_late_objects(model, eval_data):
    """Upstream's own loop from raw pixels, late-object quirk included: every step, merge, update and output."""
    inputs, record = eval_data["inputs"], {}
    annotations = {k: v[0, 0].long() for k, v in inputs["given_labels"].items()}
    labels = segment_video(model, inputs["images_uint8"].float() / 255, annotations, "upstream", record)
    assert record["backbone_calls"] == eval_data["outputs"]["backbone_calls_frames"] == [0, 1, 0, 3]
    assert [(i["object"], i["image_frame"]) for i in record["init"]] == [(1, 0), (2, 0)]
    frame0_s16 = record["init"][0]["memory16"]
    assert all(torch.equal(i["memory16"], frame0_s16) for i in record["init"])  # prev_seg_feats16_frame 0
    for got, want in zip(record["init"], eval_data["init"]):
        _close(f"video init obj {want['object']} template", got["template"], want["gc"], PIPELINE)
    assert [(s["frame"], s["object"]) for s in record["steps"]] == [(s["frame"], s["object"])
                                                                    for s in eval_data["steps"]]
    for got, want in zip(record["steps"], eval_data["steps"]):
        tag = f"video frame {want['frame']} obj {want['object']}"
        for key, wkey in (("history", "prev_seg_in"), ("template", "gc_in"), ("u16", "u16"), ("lt_sim", "LT_sim"),
                          ("update_w", "update_W"), ("logits", "logits"), ("probs", "probs")):
            _close(f"{tag} {wkey}", got[key], want[wkey], PIPELINE)
    for got, want in zip(record["merge"], eval_data["merge"]):
        for k, oid in enumerate(want["object_ids"]):
            _close(f"video merge frame {want['frame']} obj {oid}", got["merged"][k + 1],
                   want["aggregated"][oid][0, 1], PIPELINE)
    for got, want in zip(record["updates"], eval_data["updates"]):
        _close(f"video update frame {want['frame']} obj {want['object']}", got["template"], want["gc_out"], PIPELINE)
    segs = eval_data["outputs"]["segs"][0, :, 0].long()
    assert torch.equal(labels[[0, 2]], segs[[0, 2]])  # annotations as given; frame 2 has object 2 only
    left, right, top, bottom = inputs["padding_lrtb"]
    for i, merge in zip((1, 3), record["merge"]):
        _labels_match(f"video labels frame {i}", merge["labels"], [m for m in eval_data["merge"] if m["frame"] == i][0]
                      ["labels"][0, 0].long(), merge["merged"])
        crop = merge["merged"][:, top:merge["merged"].shape[1] - bottom, left:merge["merged"].shape[2] - right]
        _labels_match(f"video output frame {i}", labels[i], segs[i], crop)
    for got, want in zip(record["steps"], eval_data["steps"]):  # which frame's s16 each step matched (0, 1, 0)
        _close(f"video frame {want['frame']} obj {want['object']} s16 memory", got["memory16"],
               eval_data["features"][want["s16_memory_frame"]]["s16"], PIPELINE)


def test_late_objects_default_segments_their_frame(model, eval_data):
    """The default: the introducing frame is segmented (object 1 stays), and the new object starts from it."""
    inputs, record = eval_data["inputs"], {}
    annotations = {k: v[0, 0].long() for k, v in inputs["given_labels"].items()}
    labels = segment_video(model, inputs["images_uint8"].float() / 255, annotations, record=record)
    assert record["backbone_calls"] == [0, 1, 2, 3]
    assert [(i["object"], i["image_frame"]) for i in record["init"]] == [(1, 0), (2, 2)]
    assert set(labels[2].unique().tolist()) == {0, 1, 2}  # upstream's frame 2 holds object 2 only
    assert torch.equal(labels[2] == 2, annotations[2] == 2)


# ---------------------------------------------------------------------------------------------- training
def _train_run(state_dict, data, finetune_bn: bool, dtype=torch.float32, watch=None):
    """The training losses of the golden clip; ``watch(net)``, if given, may add hooks before the forward."""
    net = TTVOS("resnet18s16", finetune=("layer4",), finetune_bn=finetune_bn)
    load_ttvos_checkpoint(net, state_dict).to(dtype).train()
    if watch is not None:
        watch(net)
    record: dict = {}
    frames = data["inputs"]["images_uint8"].to(dtype).div(255)[None]
    losses = clip_losses(net, frames, data["inputs"]["segannos"].to(dtype), LossOptions.upstream(), record)
    losses["total"] = losses["loss_nll"] + losses["loss_diff"] + losses["loss_tmp"]
    return net, losses, record


GRAD_LOSSES = {"nll": "loss_nll", "diff": "loss_diff", "tmp": "loss_tmp", "total": "total"}


def _grads(net, losses, names):
    params = dict(net.named_parameters())
    out = {}
    for short, key in GRAD_LOSSES.items():
        got = torch.autograd.grad(losses[key], [params[n[len("vos."):]] for n in names], retain_graph=True,
                                  allow_unused=True)
        out[short] = {n: torch.zeros_like(params[n[4:]]) if g is None else g for n, g in zip(names, got)}
    return out


@pytest.mark.parametrize("variant", ["upstream_train_mode", "backbone_eval_variant"])
def test_training_losses_and_gradients(eval_data, train_data, variant):
    want = train_data[variant]
    finetune_bn = variant == "upstream_train_mode"
    net, losses, record = _train_run(eval_data["state_dict"], train_data, finetune_bn)
    assert ["vos." + n for n, p in net.named_parameters() if p.requires_grad] == train_data["trainable_param_names"]
    if finetune_bn:
        bn = {n for n, m in net.backbone.named_modules() if isinstance(m, torch.nn.BatchNorm2d) and m.training}
        assert bn == set(want["bn_train_mode"])
    for short, key in GRAD_LOSSES.items():
        _close(f"{variant} loss {short}", losses[key].detach(), want["losses"][short], CONV)
    for key, rtol in (("logsegs", CONV), ("diff_head_raw", CONV), ("diff_heat", CONV), ("diff_target", CONV),
                      ("tmp_result", CONV), ("tmp_target", ELEMENTWISE)):
        wanted = want[key] if key != "tmp_target" else want[key].unsqueeze(0)
        _close(f"{variant} {key}", record[key].detach(), wanted, rtol)
    _close(f"{variant} update_W", record["update_w"].detach(), want["update_W"], CONV)
    if "nll_per_frame" in want:
        _close(f"{variant} nll per frame", record["nll_per_frame"].detach(), want["nll_per_frame"], CONV)

    names = list(want["grads"]["nll"])
    grads = _grads(net, losses, names)
    for name in names:
        # the total is a sum of terms whose rounding scales with the largest term, not with the (cancelling) sum
        scale = max(float(want["grads"][k][name].abs().max()) for k in GRAD_LOSSES)
        # BN with batch statistics over 5x7 positions: the golden's own float32 gradients of layer4.1.bn2 are 3e-3
        # to 1.1e-2 of their scale away from a float64 run (ours: < 4e-6, see the float64 test below)
        rtol = 2e-2 if finetune_bn and ".bn" in name else CONV
        for short in GRAD_LOSSES:
            _close(f"{variant} grad {short} {name}", grads[short][name], want["grads"][short][name], rtol, scale)
    params = [n for n, p in net.named_parameters() if p.requires_grad]
    for short, key in GRAD_LOSSES.items():  # the L2 norm of every trainable tensor's gradient, per loss
        got = torch.autograd.grad(losses[key], [dict(net.named_parameters())[n] for n in params], retain_graph=True,
                                  allow_unused=True)
        norms = torch.stack([torch.zeros(()) if g is None else g.norm() for g in got])
        wanted = torch.stack([want["grad_norms"]["vos." + n][list(GRAD_LOSSES).index(short)] for n in params])
        # inside the fine-tuned stage the golden norms are up to 5.7e-4 (relative) away from a float64 run of
        # ours (layer4.0.conv1, eval variant), where our float32 is within 2.6e-5 of it: a looser bound there
        backbone = torch.tensor([n.startswith("backbone.") for n in params])
        _close(f"{variant} grad norms {short} (heads)", norms[~backbone], wanted[~backbone], CONV)
        _close(f"{variant} grad norms {short} (layer4)", norms[backbone], wanted[backbone], 1e-3)
    for short, unused in want["grads_unused"].items():
        full = _grads(net, losses, list(unused))
        assert all(float(g.abs().max()) == 0 for g in full[short].values()), f"{short} reaches {unused}"


def _watch_final_relu(maps: list):
    """A ``watch`` for :func:`_train_run`: records the input of ``layer4.1``'s final ReLU (bn2 output + identity)."""
    def watch(net) -> None:
        block = net.backbone.layer4[1]
        identity: list = []
        block.register_forward_pre_hook(lambda m, i: identity.append(i[0].detach()))
        block.bn2.register_forward_hook(lambda m, i, o: maps.append(o.detach() + identity[len(maps)]))
    return watch


def test_finetuned_bn_gradients_match_float64(eval_data, train_data):
    """Our float32 gradients through batch-statistics BN agree with float64 (the golden's own do not, by 1e-2).

    Except in channels where the ReLU after ``layer4.1.bn2`` receives a value within rounding of zero (``CONV`` of
    the map's scale; the map itself differs across CPUs by up to 4e-6 of its scale) on some frame: there another
    CPU's last-bit differences switch that ReLU's gradient on or off, as they may flip a label at a near-tie.
    Measured on the golden clip: 5 of 512 channels; with oneDNN capped at AVX2 one of them (3.5e-6 from zero at a
    scale of 8.3) flips, and its gradient moves by 1.6e-3 of the scale.
    """
    names = ["vos.backbone.layer4.1.bn2.weight", "vos.backbone.layer4.1.bn2.bias", "vos.refine.cal_UpW.2.bias"]
    net32, losses32, _ = _train_run(eval_data["state_dict"], train_data, True)
    relu_inputs: list = []
    net64, losses64, _ = _train_run(eval_data["state_dict"], train_data, True, torch.float64,
                                    watch=_watch_final_relu(relu_inputs))
    near_tie = torch.zeros(relu_inputs[0].shape[1], dtype=torch.bool)
    for pre in relu_inputs:
        near_tie |= (pre.abs() <= CONV * pre.abs().max()).flatten(2).any(2).any(0)
    assert len(relu_inputs) == 3 and 0 < int(near_tie.sum()) <= 8  # a handful of channels, not a loophole
    g32, g64 = _grads(net32, losses32, names), _grads(net64, losses64, names)
    for name in names:
        keep = ~near_tie if ".bn2." in name else torch.ones(g64["nll"][name].shape[0], dtype=torch.bool)
        for short in GRAD_LOSSES:
            _close(f"float64 grad {short} {name}", g32[short][name][keep], g64[short][name][keep], CONV,
                   max(float(g64[k][name].abs().max()) for k in GRAD_LOSSES))
