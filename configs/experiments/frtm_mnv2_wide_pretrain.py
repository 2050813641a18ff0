# The upstream-width decoder (stride-4 stage 64 ch, head 32 ch) on the same frozen MobileNetV2, stage 1: the
# accuracy / speed counterpart of the default model's narrow decoder (docs/models/). Half the
# default model's epochs (each iteration costs ~3x as much on a CPU), same schedule shape:
#   reusegate train configs/experiments/frtm_mnv2_wide_pretrain.py --work-dir work_dirs/frtm_mnv2_wide_pretrain
_base_ = ['../g_frtm_mnv2/1_pretrain.py']
wide = dict(s4_channels=None, head_channels=32)
model = dict(host=wide)
train_dataloader = dict(dataset=dict(host=wide))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=8, gamma=0.1)]
train_cfg = dict(max_epochs=10)
