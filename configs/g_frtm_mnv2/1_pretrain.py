# Stage 1 of the fast model (docs/models/): the FRTM-MobileNetV2 host alone (gate=None), its
# decoder trained on frozen taps of 24 DAVIS-2016 sequences, 2 CPU cores:
#   reusegate train configs/g_frtm_mnv2/1_pretrain.py --work-dir work_dirs/frtm_mnv2_pretrain
# Every frame after a clip's first trains the decoder (BCE), so random (unordered) frames are as good here.
# lr 3e-4, not FRTM's 1e-3: at 1e-3 the freshly initialised decoder settled on "background everywhere" (BCE
# ~0.075, the mean foreground fraction, IoU 0) and had not left it after 144 iterations; at 3e-4 it leaves that
# plateau after ~80 iterations (IoU 0.79 on training frames at 120), at 1e-4 after ~120.
_base_ = [
    '../_base_/models/g_frtm_mnv2_cpu.py',
    '../_base_/datasets/davis2016_frozen_cpu.py',
    '../_base_/schedules/adam_frozen_cpu.py',
    '../_base_/default_runtime.py',
]
model = dict(gate=None)
custom_hooks = [dict(type='ProgressBarHook')]
train_dataloader = dict(dataset=dict(host={{_base_.host}}, adapter={{_base_.adapter}}, sampling='random'))
default_hooks = dict(logger=dict(interval=8), checkpoint=dict(interval=5, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
