# Stage 1 of G-TTVOS (docs/ttvos.md): the TTVOS-MobileNetV2 host alone (gate=None), its heads trained on frozen
# taps of the 24 DAVIS-2016 sequences of the default model, 2 CPU cores:
#   reusegate train configs/g_ttvos_mnv2/1_pretrain.py --work-dir work_dirs/ttvos_mnv2_pretrain
# Unlike FRTM, TTVOS decodes from its own memory (mask history, template, previous s16), so clips are in
# temporal order (at most 3 frames apart) and no score is precomputed: the score is the host's last estimate.
# Loss: the BCE of the fg - bg logits (TTVOS's NLL for one object); its Diff and Tmp losses are not used.
_base_ = [
    '../_base_/models/g_ttvos_mnv2_cpu.py',
    '../_base_/datasets/davis2016_frozen_cpu.py',
    '../_base_/schedules/adam_frozen_cpu.py',
    '../_base_/default_runtime.py',
]
model = dict(gate=None)
# lr: the paper's 5e-4 (the default model's stage 1 needed 3e-4 to leave an all-background plateau; TTVOS starts
# from its previous mask, a strong prior). 24 epochs of 24 batches of 8 six-frame clips, lr x0.1 after 16.
optim_wrapper = dict(optimizer=dict(lr=5e-4))
train_cfg = dict(max_epochs=24)
custom_hooks = [dict(type='ProgressBarHook')]
train_dataloader = dict(dataset=dict(host={{_base_.host}}, adapter={{_base_.adapter}}, precompute_score=False))
default_hooks = dict(logger=dict(interval=8), checkpoint=dict(interval=1, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
