"""Export a host-only (stage-1, ``gate=None``) training checkpoint as a model ``reusegate bench`` can score at tau = 1.

Stage 1 trains the host alone; its checkpoint has no gate modules, so ``reusegate train --export`` writes a bare
host state dict. Comparing hosts (issue 11's protocol: each setting trained on a split's training sequences,
scored on its held-out sequences) needs them as exported models. This script builds the config's gated model
with freshly initialised gate modules, loads the checkpoint's host weights into it and exports it. Only
``--taus 1`` figures of such a model mean anything: its gate is untrained. The checkpoint is one this project's
training wrote (it is unpickled in full)::

    python tools/export_host_checkpoint.py configs/g_frtm_mnv2/1_pretrain.py \\
        work_dirs/hard_base/epoch_20.pth work_dirs/hard_base/host.pth
    reusegate bench --model work_dirs/hard_base/host.pth --sequences configs/splits/davis16_hard.txt --taus 1 --no-flops
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from mmengine.config import Config

from reusegate.integrations.mmengine.model import ReuseGateVOS, export_state_dict
from reusegate.registry import MODELS

# The default model config's gate settings at tau = 1 (configs/_base_/models/g_frtm_mnv2_cpu.py; stage-1 configs
# set gate=None). The gate's layers stay untrained: at tau = 1 the export recommends the bare host.
GATE = dict(tau=1.0, variant="decode", m1=0.5, m2=0.0, ep_t=6)


def export(config: Path, checkpoint: Path, out: Path) -> Path:
    """Write ``out`` (+ ``.json``): the config's host with the checkpoint's weights and untrained gate modules."""
    cfg = Config.fromfile(config)
    model_cfg = dict(cfg.model, gate=GATE)
    model: ReuseGateVOS = MODELS.build(model_cfg)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    prefix = "net.host."
    host = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not host:
        raise ValueError(f"{checkpoint} holds no '{prefix}*' weights: not a reusegate training checkpoint")
    missing, unexpected = model.net.host.load_state_dict(host, strict=False)
    rebuilt = tuple(getattr(model.net.host, "rebuilt_prefixes", ()))
    missing = [k for k in missing if not k.startswith(rebuilt)]
    if missing or unexpected:
        raise ValueError(f"{checkpoint} does not match {config}'s host: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return Path(export_state_dict(model, out, model_cfg["host"], model_cfg["adapter"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="the stage-1 config the checkpoint was trained with")
    parser.add_argument("checkpoint", type=Path, help="its mmengine checkpoint (e.g. work_dirs/NAME/epoch_20.pth)")
    parser.add_argument("out", type=Path, help="the exported model, NAME.pth (NAME.json is written beside it)")
    args = parser.parse_args()
    print(f"exported {export(args.config, args.checkpoint, args.out)}")


if __name__ == "__main__":
    main()
