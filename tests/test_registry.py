"""One lookup: every registered name is found through ``reusegate.registry.lookup`` (and built through ``build``),
from the mmengine registries that the plugin hooks fill.

Installed third-party plugins are in test_plugins.py; here in-process plugins (registered on a manager built as
in production) show the lookup rules: every host takes any registered backbone, a name is unique within a
registry, a name is found as its own kind only, and a checkout without reusegate's own entry points says why
nothing is registered.
"""
from __future__ import annotations

import importlib.metadata as md
import json
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from reusegate.plugins import manager as plugins
from reusegate import registry
from reusegate.adapters.frtm.adapter import FRTMAdapter
from reusegate.adapters.frtm.model import FRTM
from reusegate.adapters.frtm.target_model import TargetModelParams
from reusegate.adapters.module_tap.example import BACKBONE_TAPS, ExampleVOSNet
from reusegate.adapters.reference import ReferenceAdapter, ReferenceHost
from reusegate.adapters.ttvos import TTVOS
from reusegate.adapters.ttvos.backbones import MobileNetV2S16, mobilenet_v2s16
from reusegate.core.host import HostAdapter
from reusegate.core.gate import ReuseGate
from reusegate.plugins.hookspecs import hookimpl
from reusegate.zoo.catalog import load_gate, save_gate
from reusegate.registry import NotRegisteredError, PluginRegistry, build, lookup

CHEAP = TargetModelParams.inference_fast(num_aug=2, init_iters=(2, 2), update_iters=(2,), fit_resolution="score",
                                         memory_size=8)
HOSTS = {
    "frtm": (lambda backbone: FRTM(backbone, target_params=CHEAP), "frtm"),
    "reference": (lambda backbone: ReferenceHost(width=8, backbone=backbone), "reference"),
    "module_tap": (lambda backbone: ExampleVOSNet(width=8, backbone=backbone), dict(type="module_tap", **BACKBONE_TAPS)),
}


@pytest.mark.parametrize("spec", ["mobilenet_v2", dict(type="mobilenet_v2", weights=None)], ids=["name", "config"])
@pytest.mark.parametrize("host", sorted(HOSTS))
def test_every_host_takes_a_registered_backbone_by_name_or_config(host, spec):
    make, adapter = HOSTS[host]
    torch.manual_seed(0)
    model = make(spec)
    assert type(model.backbone).__name__ == "MobileNetV2"
    gate = ReuseGate(model, adapter, tau=0.0)
    assert gate.adapter.taps.match_channels == 32  # MobileNetV2's s8, not the host's own encoder's
    frame = torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
    labels = torch.zeros(64, 64, dtype=torch.long)
    labels[16:48, 8:40] = 1
    session = gate.session()
    results = [session.step(frame, labels if i == 0 else None) for i in range(3)]
    assert [r.deep_computed for r in results] == [True, False, False]  # the backbone's deep taps were skipped
    assert results[-1].labels.shape == (64, 64)


def test_unknown_backbone_lists_the_registered_ones():
    with pytest.raises(KeyError, match="no backbone named 'nope'; registered backbones: .*mobilenet_v2"):
        ReferenceHost(backbone=dict(type="nope"))
    with pytest.raises(ValueError, match="lacks"):
        ExampleVOSNet(backbone=nn.Identity())


def test_load_gate_finds_hosts_in_the_registry(tmp_path):
    path = save_gate(ReuseGate(ReferenceHost(width=8), "reference"), tmp_path / "m.pth", host="reference",
                     adapter="reference", host_kwargs={"width": 8})
    assert isinstance(load_gate(path).host, ReferenceHost)
    meta = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**meta, "host": "nope"}))
    with pytest.raises(KeyError, match="no host named 'nope'; registered hosts: .*frtm.*reference"):
        load_gate(path)


def _manager_with(monkeypatch, **hooks) -> plugins.PluginManager:
    """The production manager plus one in-process plugin 'extra' of distribution 'rg-extra'."""
    pm = plugins.build_plugin_manager()
    pm.register(SimpleNamespace(**{k: hookimpl(v) for k, v in hooks.items()}), name="extra")
    pm.distributions["extra"] = "rg-extra"
    monkeypatch.setattr(plugins, "plugin_manager", lambda: pm)
    return pm


def test_a_backbone_named_like_a_host_is_an_error_naming_both(monkeypatch):
    def register_backbones(register):
        register("reference", nn.Identity)

    _manager_with(monkeypatch, register_backbones=register_backbones)
    fresh = PluginRegistry("model", scope="rg_test_clash", plugin_kinds=("backbones", "hosts"))
    with pytest.raises(plugins.PluginError) as info:
        fresh.get("resnet18")
    message = str(info.value)
    assert "'reference'" in message and "as a backbone by 'rg-extra' (plugin 'extra')" in message
    assert "as a host by 'reusegate' (plugin 'reference')" in message
    with pytest.raises(plugins.PluginError):  # no half-filled registry: it fails the same way every time
        fresh.get("resnet18")
    assert "resnet18" not in fresh.module_dict


def test_a_name_registered_by_a_helper_is_attributed_to_its_plugin(monkeypatch):
    def helper(register):
        register("resnet18", nn.Identity)

    def register_backbones(register):
        helper(register)

    _manager_with(monkeypatch, register_backbones=register_backbones)
    with pytest.raises(plugins.PluginError) as info:
        plugins.available("backbones")
    assert "'resnet18' is registered by both" in str(info.value)
    assert "'rg-extra' (plugin 'extra')" in str(info.value) and "'reusegate' (plugin 'frtm')" in str(info.value)


def test_an_uninstalled_checkout_says_why_no_adapter_is_found(monkeypatch):
    real = md.distributions
    monkeypatch.setattr(md, "distributions", lambda **kw: [d for d in real(**kw) if d.metadata["Name"] != "reusegate"])

    def distribution(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "distribution", distribution)
    pm = plugins.build_plugin_manager()
    monkeypatch.setattr(plugins, "plugin_manager", lambda: pm)
    monkeypatch.setattr(registry, "ADAPTERS",
                        PluginRegistry("adapter", scope="rg_test_uninstalled", plugin_kinds=("adapters",)))
    with pytest.raises(KeyError) as info:
        lookup("adapter", "frtm")
    message = str(info.value)
    assert "registered host adapters: none" in message
    assert "not installed" in message and "pip install -e ." in message


def test_a_missing_name_mentions_plugins_that_failed_to_import(monkeypatch):
    pm = _manager_with(monkeypatch)
    pm.broken["rg_broken"] = "reusegate plugin 'rg_broken' from distribution 'rg-broken' failed to import"
    monkeypatch.setattr(registry, "ADAPTERS",
                        PluginRegistry("adapter", scope="rg_test_broken", plugin_kinds=("adapters",)))
    with pytest.raises(KeyError, match="failed to import: reusegate plugin 'rg_broken' from distribution 'rg-broken'"):
        lookup("adapter", "x")


# ---------------------------------------------------------------------------------------------- the one lookup
@pytest.mark.parametrize("kind, name, found", [
    ("backbone", "mobilenet_v2s16", lambda obj: obj is mobilenet_v2s16),  # TTVOS's, through the same hook as FRTM's
    ("backbone", "resnet18", lambda obj: callable(obj)),
    ("host", "frtm", lambda obj: obj is FRTM),
    ("host", "ttvos", lambda obj: obj is TTVOS),
    ("adapter", "frtm", lambda obj: obj is FRTMAdapter),
    ("model", "ReuseGateVOS", lambda obj: obj.__name__ == "ReuseGateVOS"),
    ("dataset", "DavisClipDataset", lambda obj: obj.__name__ == "DavisClipDataset"),
    ("metric", "VOSMetric", lambda obj: obj.__name__ == "VOSMetric"),
    ("hook", "GateMarginHook", lambda obj: obj.__name__ == "GateMarginHook"),
])
def test_every_kind_of_name_is_found_through_lookup(kind, name, found):
    assert found(lookup(kind, name))


def test_a_name_of_another_kind_is_not_found_and_the_error_says_what_it_is():
    with pytest.raises(NotRegisteredError, match=r"no host named 'resnet18' \(it is a backbone\); registered hosts: "
                                                 r".*frtm.*ttvos"):
        lookup("host", "resnet18")
    with pytest.raises(KeyError, match="no dataset named 'nope'; registered datasets: .*DavisClipDataset"):
        lookup("dataset", "nope")
    with pytest.raises(ValueError, match="unknown kind of registered name 'backbones'; expected one of backbone"):
        lookup("backbones", "resnet18")
    with pytest.raises(NotRegisteredError) as info:
        lookup("adapter", "nope")
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)  # a lookup and a config mistake
    assert str(info.value).startswith("no host adapter named 'nope'; registered host adapters: ")  # not quoted


def test_build_takes_an_adapter_in_every_form():
    host = ReferenceHost(width=8)
    given = ReferenceAdapter(host)
    assert build("adapter", given, model=host) is given
    for spec in ("reference", ReferenceAdapter, dict(type="reference"), dict(type=ReferenceAdapter)):
        adapter = build("adapter", spec, model=host)
        assert type(adapter) is ReferenceAdapter and adapter.model is host
    with pytest.raises(ValueError, match="an adapter given as a dict needs a 'type'"):
        build("adapter", dict(width=8), model=host)
    with pytest.raises(ValueError, match="adapter must be a HostAdapter, a HostAdapter subclass, a registered name"):
        build("adapter", nn.Identity, model=host)
    with pytest.raises(TypeError, match="needs the host"):
        build("adapter", "reference")
    with pytest.raises(KeyError, match="no host adapter named 'nope'"):
        ReuseGate(host, dict(type="nope"))
    assert issubclass(lookup("adapter", "reference"), HostAdapter)


def test_build_checks_a_backbone_for_the_taps_its_host_reads():
    assert isinstance(build("backbone", "mobilenet_v2s16", taps=("s4", "s8", "s16")), MobileNetV2S16)
    with pytest.raises(ValueError, match=r"lacks the feature taps \['s32'\].*reads \['s4', 's8', 's16', 's32'\]"):
        build("backbone", "mobilenet_v2s16")  # the uniform four by default
    with pytest.raises(ValueError, match=r"lacks the feature taps \['s32'\]"):
        ReferenceHost(width=8, backbone="resnet18s16")  # a stride-16 trunk is refused at construction
    with pytest.raises(ValueError, match="a backbone config needs a 'type'"):
        build("backbone", dict(weights=None))
    with pytest.raises(ValueError, match="taps= applies to backbones only"):
        build("host", "reference", taps=("s4",))
    host = build("host", dict(type="reference", width=8))
    assert isinstance(host, ReferenceHost) and host.channels["s4"] > 0


def test_every_host_normalises_with_the_statistics_a_backbone_declares():
    """A backbone trained on other input statistics (EfficientNet-Lite: 127/255, 128/255) declares them, and FRTM
    and TTVOS (whose stride-16 wrapper of a plugin backbone must pass them through) normalise with them; a backbone
    that declares none gets ImageNet's."""
    from reusegate.adapters.frtm.backbones import mobilenet_v2
    from reusegate.adapters.ttvos.backbones import PluginBackboneS16
    from reusegate.core.host import IMAGENET_MEAN, IMAGENET_STD

    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)

    def own_statistics():
        backbone = mobilenet_v2(None)
        backbone.input_mean, backbone.input_std = mean, std
        return backbone

    at_mean = torch.tensor(mean).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    one_std = at_mean + torch.tensor(std).view(1, 3, 1, 1)
    frtm = FRTM(own_statistics(), target_params=CHEAP)
    ttvos = TTVOS(backbone=PluginBackboneS16(own_statistics()))
    for normalize in (lambda x: frtm.normalize(255 * x), ttvos.normalize):
        assert normalize(at_mean).abs().max() < 1e-5
        assert (normalize(one_std) - 1).abs().max() < 1e-5
    imagenet_mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    imagenet_one_std = imagenet_mean + torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    for host in (FRTM(mobilenet_v2(None), target_params=CHEAP), TTVOS(backbone=PluginBackboneS16(mobilenet_v2(None)))):
        normalize = host.normalize if isinstance(host, TTVOS) else (lambda x, h=host: h.normalize(255 * x))
        assert normalize(imagenet_mean).abs().max() < 1e-5
        assert (normalize(imagenet_one_std) - 1).abs().max() < 1e-5
