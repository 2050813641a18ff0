# Issue 28's second stage: the pseudo-video stage 1 (configs/experiments/pseudo_video_pretrain.py, 16 epochs on
# DAVIS-2016 + fresh still-image clips) fine-tuned on DAVIS-2016 alone, the same 24 sequences as the fast model's
# stage 1, on frozen taps (cheap: ~1 min an epoch on 2 cores), at a tenth of the pre-training's first lr:
#   reusegate train configs/experiments/pseudo_video_finetune.py --work-dir work_dirs/pv_finetune \
#       --trust-load-from --cfg-options load_from=work_dirs/pv_pretrain/epoch_16.pth
_base_ = ['../g_frtm_mnv2/1_pretrain.py']
optim_wrapper = dict(optimizer=dict(lr=3e-5))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=4, gamma=0.1)]
train_cfg = dict(max_epochs=6)
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=1))
