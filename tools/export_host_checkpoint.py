"""Export a host-only (stage-1, ``gate=None``) training checkpoint, alone or under a trained model's gate.

Stage 1 trains the host alone; its checkpoint has no gate modules, so ``reusegate train --export`` writes a bare
host state dict. Comparing hosts (issue 11's protocol: each setting trained on a split's training sequences,
scored on its held-out sequences) needs them as exported models. By default this script builds the config's
gated model with freshly initialised gate modules, loads the checkpoint's host weights into it and exports it.
Only ``--taus 1`` figures of such a model mean anything: its gate is untrained::

    python tools/export_host_checkpoint.py configs/g_frtm_mnv2/1_pretrain.py \\
        work_dirs/hard_base/epoch_20.pth work_dirs/hard_base/host.pth
    reusegate bench --model work_dirs/hard_base/host.pth --sequences configs/splits/davis16_hard.txt --taus 1 --no-flops

With ``--gate-from MODEL.pth`` (an exported gated model) the config is a gate-only stage's (one that trains only
gate modules, such as the fast model's stage 2c) and the output is the training checkpoint that stage starts
from: the new host's weights under MODEL's gate modules. Retraining a host then costs its stage 1 and the short
gate-only stage instead of the whole gate chain::

    python tools/export_host_checkpoint.py configs/g_frtm_mnv2/4_change_mask.py work_dirs/pv/epoch_6.pth \\
        work_dirs/pv/start_2c.pth --gate-from reusegate/zoo/weights/g_frtm_mnv2.pth
    reusegate train configs/g_frtm_mnv2/4_change_mask.py --work-dir work_dirs/pv_2c --trust-load-from \\
        --cfg-options load_from=work_dirs/pv/start_2c.pth --export work_dirs/pv_2c/model.pth

The checkpoint is one this project's training wrote (it is unpickled in full).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

import torch
from mmengine.config import Config

from reusegate.data.writer import atomic_torch_save
from reusegate.integrations.mmengine.model import ReuseGateVOS, export_state_dict, load_exported
from reusegate.registry import MODELS

# The default model config's gate settings at tau = 1 (configs/_base_/models/g_frtm_mnv2_cpu.py; stage-1 configs
# set gate=None). The gate's layers stay untrained: at tau = 1 the export recommends the bare host.
GATE = dict(tau=1.0, variant="decode", m1=0.5, m2=0.0, ep_t=6)


def _load_strict(module: torch.nn.Module, state: dict, source: Path, config: Path) -> None:
    """Load ``state`` into ``module``; every weight must match except the rebuilt (frozen, pretrained) ones."""
    missing, unexpected = module.load_state_dict(state, strict=False)
    rebuilt = tuple(getattr(module, "rebuilt_prefixes", ()))
    missing = [k for k in missing if not k.startswith(rebuilt)]
    if missing or unexpected:
        raise ValueError(f"{source} does not match {config}: missing {missing[:5]}, unexpected {unexpected[:5]}")


def export(config: Path, checkpoint: Path, out: Path, gate_from: Optional[Path] = None) -> Path:
    """Write ``out``: the checkpoint's host with untrained gate modules (an exported model, ``.json`` beside it),
    or with ``gate_from``'s gate modules (a training checkpoint for the config's gate-only stage)."""
    cfg = Config.fromfile(config)
    model_cfg = dict(cfg.model) if gate_from else dict(cfg.model, gate=GATE)
    if not model_cfg.get("gate"):
        raise ValueError(f"{config} trains the host alone (gate=None); --gate-from needs a gate stage's config")
    model: ReuseGateVOS = MODELS.build(model_cfg)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    prefix = "net.host."
    host = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not host:
        raise ValueError(f"{checkpoint} holds no '{prefix}*' weights: not a reusegate training checkpoint")
    _load_strict(model.net.host, host, checkpoint, config)
    if gate_from is None:
        return Path(export_state_dict(model, out, model_cfg["host"], model_cfg["adapter"]))
    gate = {k[len("gate_modules."):]: v for k, v in load_exported(gate_from).items() if k.startswith("gate_modules.")}
    _load_strict(model.net.gate_modules, gate, gate_from, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="the stage-1 config the checkpoint was trained with (with "
                                                  "--gate-from: the gate-only stage to start)")
    parser.add_argument("checkpoint", type=Path, help="its mmengine checkpoint (e.g. work_dirs/NAME/epoch_20.pth)")
    parser.add_argument("out", type=Path, help="the exported model, NAME.pth (NAME.json is written beside it); "
                                               "with --gate-from, the gate stage's load_from checkpoint")
    parser.add_argument("--gate-from", type=Path, metavar="MODEL.pth",
                        help="an exported gated model whose gate modules go over the checkpoint's host")
    args = parser.parse_args()
    print(f"wrote {export(args.config, args.checkpoint, args.out, args.gate_from)}")


if __name__ == "__main__":
    main()
