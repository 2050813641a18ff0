# Issue 28: the pseudo-video stage 1 (configs/experiments/pseudo_video_pretrain.py, 16 epochs) fine-tuned at a tenth
# of its lr on the same mix (the 24 DAVIS sequences and as many fresh still-image clips an epoch), instead of on
# DAVIS alone (configs/experiments/pseudo_video_finetune.py): does keeping the photographs keep what they taught?
# 2 epochs, ~6 min on 2 cores:
#   reusegate train configs/experiments/pseudo_video_mixed_finetune.py --work-dir work_dirs/pv_mixed_ft \
#       --trust-load-from --cfg-options load_from=work_dirs/pv_pretrain/epoch_16.pth
_base_ = ['./pseudo_video_pretrain.py']
optim_wrapper = dict(optimizer=dict(lr=3e-5))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=100, gamma=0.1)]
train_cfg = dict(max_epochs=2)
