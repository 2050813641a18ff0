"""Safe loading (issue 15): weight files are read with ``weights_only=True`` everywhere, a real malicious pickle
is refused by every loader before its code runs, ``--resume`` trusts only its own work dir, and plugins can
neither be forced on a user who disabled autoload nor take the built-ins down when they fail to import."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from reusegate.adapters.reference import ReferenceHost
from reusegate.cli import main
from reusegate.commands.train import load_config, needs_trust
from reusegate.core.gate import ReuseGate
from reusegate.zoo.catalog import load_gate, save_gate
from reusegate.zoo.safe_load import UnsafeCheckpointError, load_weights, unsafe_globals

REPO = Path(__file__).resolve().parents[1]
GATED = REPO / "configs" / "examples" / "g_reference_davis16_cpu.py"


class _CreatesAFile:
    """Unpickling this object calls ``open(path, "w")``: it creates ``path``, the proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def evil(tmp_path) -> tuple[Path, Path]:
    """A real malicious checkpoint (a state dict with one extra pickled call) and the file it would create."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    state = ReuseGate(ReferenceHost(width=8, refined_channels=16), "reference").state_dict()
    torch.save({**state, "payload": _CreatesAFile(marker)}, path)
    return path, marker


def _loaders():
    from reusegate.adapters.frtm.backbones import load_backbone_weights, mobilenet_v2
    from reusegate.adapters.frtm.checkpoints import read_checkpoint
    from reusegate.integrations.mmengine.model import load_exported

    return {
        "load_weights": load_weights,
        "load_exported": load_exported,
        "frtm read_checkpoint": read_checkpoint,
        "backbone weights": lambda p: load_backbone_weights(mobilenet_v2(), p),
    }


@pytest.mark.parametrize("loader", ["load_weights", "load_exported", "frtm read_checkpoint", "backbone weights"])
def test_every_loader_refuses_a_malicious_pickle(evil, loader):
    path, marker = evil
    with pytest.raises(UnsafeCheckpointError) as exc:
        _loaders()[loader](path)
    assert str(path) in str(exc.value) and "could run code" in str(exc.value) and "open" in str(exc.value)
    assert not marker.exists()


@pytest.mark.parametrize("old_torch", [False, True], ids=["torch>=2.5", "torch<2.5"])
def test_unsafe_globals_runs_nothing(evil, tmp_path, monkeypatch, old_torch):
    """What train's trust check reads, also where torch lacks get_unsafe_globals_in_checkpoint (< 2.5)."""
    path, marker = evil
    if old_torch:
        monkeypatch.delattr(torch.serialization, "get_unsafe_globals_in_checkpoint")
    plain = tmp_path / "plain.pth"
    torch.save({"w": torch.zeros(2)}, plain)
    assert unsafe_globals(plain) == []
    assert unsafe_globals(path) != [] and not marker.exists()
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a torch weight file"):
        unsafe_globals(tmp_path / "junk.pth")


def test_the_payload_is_real(evil):
    """Guards the tests above: loaded without weights_only, the same file does create the file."""
    path, marker = evil
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_load_gate_refuses_a_malicious_model(evil, tmp_path):
    path, marker = evil
    kwargs = dict(width=8, refined_channels=16)
    save_gate(ReuseGate(ReferenceHost(**kwargs), "reference"), tmp_path / "good.pth", host="reference",
              adapter="reference", host_kwargs=kwargs)
    os.replace(tmp_path / "good.json", path.with_suffix(".json"))  # a valid description beside the evil weights
    with pytest.raises(UnsafeCheckpointError):
        load_gate(path)
    assert not marker.exists()


def test_run_refuses_a_malicious_model(evil, tmp_path, capsys):
    """The CLI path end to end on a valid clip: exit 2, one line naming the file, nothing created."""
    from PIL import Image

    from reusegate.data.synthetic import make_clip

    path, marker = evil
    kwargs = dict(width=8, refined_channels=16)
    save_gate(ReuseGate(ReferenceHost(**kwargs), "reference"), tmp_path / "good.pth", host="reference",
              adapter="reference", host_kwargs=kwargs)
    os.replace(tmp_path / "good.json", path.with_suffix(".json"))
    clip = make_clip(((2, 2.0),), size=(32, 48), n_objects=1, seed=1)
    (tmp_path / "clip").mkdir()
    for i, f in enumerate(clip.frames):
        Image.fromarray(f).save(tmp_path / "clip" / f"{i:05d}.png")
    Image.fromarray(clip.labels[0]).save(tmp_path / "first.png")
    rc = main(["run", "--input", str(tmp_path / "clip"), "--first-mask", str(tmp_path / "first.png"), "--model",
               str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("reusegate run: error: refused to load") and str(path) in err[0]
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_no_weight_file_is_read_without_weights_only():
    """Every torch.load in the shipped code passes weights_only=True (reusegate's own go through safe_load)."""
    calls = []
    for root in ("reusegate", "adapters", "integrations"):
        for p in (REPO / root).rglob("*.py"):
            for m in re.finditer(r"(?<!`)torch\.load\((.*)", p.read_text()):  # (not in ``docs``)
                calls.append((str(p.relative_to(REPO)), m.group(1)))
    assert calls, "the scan found no torch.load at all"
    unsafe = [(p, c) for p, c in calls if "weights_only=True" not in c]
    assert unsafe == []


# ------------------------------------------------------------------------------------------------ train
def test_load_from_a_malicious_file_is_refused_by_train(evil, tmp_path, capsys):
    path, marker = evil
    rc = main(["train", str(GATED), "--work-dir", str(tmp_path / "work"), "--cfg-options", f"load_from={path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "refusing to load load_from" in err[0] and "--trust-load-from" in err[0]
    assert "builtins.open" in err[0] or "io.open" in err[0]
    assert not marker.exists()


def test_load_from_a_plain_state_dict_needs_no_trust(tmp_path):
    plain = tmp_path / "plain.pth"
    torch.save({"w": torch.zeros(2)}, plain)
    assert needs_trust(plain, tmp_path / "work") is False
    (tmp_path / "junk.pth").write_bytes(plain.read_bytes()[:50])
    with pytest.raises(ValueError, match="damaged"):
        needs_trust(tmp_path / "junk.pth", tmp_path / "work")


def _fake_checkpoint(path: Path) -> Path:
    """A file with mmengine's pickled extras (any non-tensor object does): loading it needs trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "message_hub": _CreatesAFile(path.with_suffix(".ran"))}, path)
    return path


def test_resume_trusts_only_its_own_work_dir(tmp_path, capsys):
    work = tmp_path / "work"
    own = _fake_checkpoint(work / "epoch_1.pth")
    elsewhere = _fake_checkpoint(tmp_path / "downloads" / "epoch_9.pth")

    cfg = load_config(str(GATED), str(work), resume=str(own), progress=False)
    assert cfg.load_from == str(own) and cfg.trusted_checkpoint is True
    assert "a checkpoint of this run's work dir" in capsys.readouterr().out

    with pytest.raises(ValueError, match="outside the work dir") as exc:
        load_config(str(GATED), str(work), resume=str(elsewhere), progress=False)
    assert "--work-dir" in str(exc.value)

    (work / "last_checkpoint").write_text(str(elsewhere))  # a pointer may lead anywhere: it is checked too
    with pytest.raises(ValueError, match="last_checkpoint points to"):
        load_config(str(GATED), str(work), resume="auto", progress=False)
    (work / "last_checkpoint").write_text(str(own))
    assert load_config(str(GATED), str(work), resume="auto", progress=False).load_from == str(own)

    damaged = work / "epoch_2.pth"  # cut off while it was written
    damaged.write_bytes(own.read_bytes()[:100])
    with pytest.raises(ValueError, match="earlier checkpoint"):
        load_config(str(GATED), str(work), resume=str(damaged), progress=False)

    # a kill while mmengine rewrote last_checkpoint leaves it empty: the newest intact checkpoint is taken
    # (epoch_2.pth is newer but cut off)
    (work / "last_checkpoint").write_text("")
    assert load_config(str(GATED), str(work), resume="auto", progress=False).load_from == str(own)
    assert "is empty" in capsys.readouterr().out

    # --resume CHECKPOINT without --work-dir continues the run that wrote it
    assert load_config(str(GATED), None, resume=str(elsewhere), progress=False).work_dir == str(elsewhere.parent)
    assert not any(p.suffix == ".ran" for p in tmp_path.rglob("*"))


def test_load_from_outside_the_work_dir_needs_the_users_word(tmp_path):
    stage1 = _fake_checkpoint(tmp_path / "stage1" / "epoch_20.pth")
    options = {"load_from": str(stage1)}
    with pytest.raises(ValueError, match="--trust-load-from"):
        load_config(str(GATED), str(tmp_path / "stage2"), cfg_options=options, progress=False)
    cfg = load_config(str(GATED), str(tmp_path / "stage2"), cfg_options=options, progress=False, trust_load_from=True)
    assert cfg.trusted_checkpoint is True


# ------------------------------------------------------------------------------------------------ plugins
def _fake_distribution(site: Path, name: str, module_source: str) -> None:
    """An installed distribution as importlib.metadata sees it: a .dist-info with an entry point in the
    ``reusegate`` group, and its module beside it."""
    module = name.replace("-", "_")
    info = site / f"{module}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[reusegate]\n{module} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(module_source))


PROBE = """
import json, warnings
warnings.simplefilter("always")
from reusegate.adapters.reference import ReferenceHost
from reusegate.core.gate import ReuseGate
with warnings.catch_warnings(record=True) as caught:
    gate = ReuseGate(ReferenceHost(width=8, refined_channels=16), "reference")   # a built-in, by name
out = {"warnings": [str(w.message) for w in caught if "plugin" in str(w.message)]}
try:
    ReuseGate(ReferenceHost(width=8, refined_channels=16), "broken_adapter")
except KeyError as exc:
    out["unknown"] = str(exc)
print(json.dumps(out))
"""


def _probe(site: Path, cwd: Path, disable: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "REUSEGATE_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(site)] + [p for p in [env.get("PYTHONPATH")] if p])
    if disable:
        env["REUSEGATE_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_plugin_raising_at_import_is_named_and_builtins_still_work(tmp_path):
    site, imported = tmp_path / "site", tmp_path / "imported"
    _fake_distribution(site, "rg-broken-plugin", f"""
        open({str(imported)!r}, "w").close()   # proves the module was imported
        raise RuntimeError("boom at import")
    """)
    out = _probe(site, tmp_path, disable=False)
    assert imported.exists()
    assert len(out["warnings"]) == 1
    warning = out["warnings"][0]
    assert "'rg-broken-plugin'" in warning and "boom at import" in warning and "REUSEGATE_DISABLE_PLUGIN_AUTOLOAD" in warning
    assert "broken_adapter" in out["unknown"]  # the built-in worked above; unknown names still say what exists

    # the CLI reports it as one warning line and the built-in reference host still runs
    from PIL import Image

    from reusegate.data.synthetic import make_clip

    clip = make_clip(((2, 2.0),), size=(32, 48), n_objects=1, seed=1)
    (tmp_path / "clip").mkdir()
    for i, f in enumerate(clip.frames):
        Image.fromarray(f).save(tmp_path / "clip" / f"{i:05d}.png")
    Image.fromarray(clip.labels[0]).save(tmp_path / "first.png")
    kwargs = dict(width=8, refined_channels=16)
    save_gate(ReuseGate(ReferenceHost(**kwargs), "reference"), tmp_path / "m.pth", host="reference",
              adapter="reference", host_kwargs=kwargs)
    env = {k: v for k, v in os.environ.items() if k != "REUSEGATE_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(site)] + [p for p in [env.get("PYTHONPATH")] if p])
    cli = subprocess.run([sys.executable, "-m", "reusegate.cli", "run", "--input", str(tmp_path / "clip"),
                          "--first-mask", str(tmp_path / "first.png"), "--model", str(tmp_path / "m.pth"), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    warned = [ln for ln in cli.stderr.splitlines() if "rg-broken-plugin" in ln]
    assert len(warned) == 1 and warned[0].startswith("reusegate: warning: reusegate plugin")
    assert len(list((tmp_path / "out" / "clip").glob("*.png"))) == 3

    imported.unlink()
    quiet = _probe(site, tmp_path, disable=True)
    assert not imported.exists()  # autoload off: the third-party module is never imported
    assert quiet["warnings"] == []


def test_a_plugin_error_is_one_line_from_the_cli(tmp_path):
    """Two distributions declaring one entry point is a PluginError: the CLI prints it as one line naming
    both, exit 2, no traceback."""
    site = tmp_path / "site"
    for name in ("rg-clash-one", "rg-clash-two"):
        module = name.replace("-", "_")
        info = site / f"{module}-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[reusegate]\nclash = {module}\n")
        (site / f"{module}.py").write_text("")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    env.pop("REUSEGATE_DISABLE_PLUGIN_AUTOLOAD", None)
    proc = subprocess.run([sys.executable, "-m", "reusegate.cli", "demo", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("reusegate demo: error:") and "rg-clash-one" in line and "rg-clash-two" in line
    assert not (tmp_path / "out").exists()
