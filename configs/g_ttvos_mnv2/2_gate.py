# Stage 2 of G-TTVOS (docs/ttvos.md): the reuse gate on the pre-trained TTVOS-MobileNetV2 host, the default
# G-FRTM's stage 2 (configs/g_frtm_mnv2/2_gate.py) on TTVOS: ordered 6-frame clips of frozen taps,
# the gate modules alone (freeze_host), M(0, 0), lr 1e-3; half its schedule (12 epochs, lr x0.1 after 10) to fit
# the session that trained it.
#   reusegate train configs/g_ttvos_mnv2/2_gate.py --work-dir work_dirs/g_ttvos_mnv2 \
#       --trust-load-from --cfg-options load_from=work_dirs/ttvos_mnv2_pretrain/epoch_24.pth \
#       --export reusegate/zoo/weights/g_ttvos_mnv2.pth
_base_ = [
    '../_base_/models/g_ttvos_mnv2_cpu.py',
    '../_base_/datasets/davis2016_frozen_cpu.py',
    '../_base_/schedules/adam_frozen_cpu.py',
    '../_base_/default_runtime.py',
]
# tau: the threshold `reusegate bench` measured on the development split (docs/ttvos.md), recorded by --export as
# the model's recommended_tau; training itself gates at train_tau.
model = dict(freeze_host=True, gate=dict(m1=0.0, tau=0.475))
custom_hooks = [dict(type='GateMarginHook'), dict(type='ProgressBarHook')]
train_dataloader = dict(dataset=dict(host={{_base_.host}}, adapter={{_base_.adapter}}, precompute_score=False))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=10, gamma=0.1)]
train_cfg = dict(max_epochs=12)
default_hooks = dict(logger=dict(interval=8), checkpoint=dict(interval=1, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
