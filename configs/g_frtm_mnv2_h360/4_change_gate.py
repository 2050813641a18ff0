# Stage 2c of the accurate model, the shipped one: the fast model's former stage 2c
# (configs/experiments/g_frtm_mnv2_change_gate.py: the change gate's four parameters alone train on the finished
# model, reused frames hold the cached score and refined feature) on the accurate model's stage 2b, at a working
# height of 360 on all 30 DAVIS-2016 training sequences and the 12 procedural clips, about 11 min on 2 cores.
# tau = 0.75 as for the fast model (docs/experiments/change-gate-and-hold.md); --export records it as the
# model's recommended_tau:
#   reusegate train configs/g_frtm_mnv2_h360/4_change_gate.py --work-dir work_dirs/g_frtm_mnv2_h360_hold \
#       --trust-load-from --cfg-options load_from=work_dirs/g_frtm_mnv2_h360_more/epoch_24.pth \
#       --export reusegate/zoo/weights/g_frtm_mnv2_h360.pth
_base_ = ['3_gate_more.py']
model = dict(gate=dict(gate_input='change', reuse_path='hold', tau=0.75), train_only=['gate_modules.change_gate'])
randomness = dict(seed=2)
optim_wrapper = dict(optimizer=dict(lr=1e-2))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=4, gamma=0.1)]
train_cfg = dict(max_epochs=6)
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=1))
