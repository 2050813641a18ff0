# Stage 2c of the fast model (measured, not shipped: the fast model keeps the paper's gate, which the demo shows):
# its finished gate (stage 2b) with the paper's GateHead replaced by the change gate (reusegate.modules.ChangeGate,
# README "The change gate"): only the change gate's four parameters train,
# everything else (host, template modules, delta generator, refine-translator) is frozen in eval mode. Same
# clips as stage 2 (24 DAVIS-2016 sequences without the development split, 12 procedural clips), 6 epochs
# (about 4 min):
#   reusegate train configs/cpu/g_frtm_mnv2_change_gate_cpu.py --work-dir work_dirs/g_frtm_mnv2_change \
#       --trust-load-from --cfg-options load_from=work_dirs/g_frtm_mnv2_more/epoch_24.pth \
#       --export work_dirs/g_frtm_mnv2_change/g_frtm_mnv2_change.pth
_base_ = ['g_frtm_mnv2_davis16_cpu_more.py']
model = dict(gate=dict(gate_input='change'), train_only=['gate_modules.change_gate'])
randomness = dict(seed=2)
optim_wrapper = dict(optimizer=dict(lr=1e-2))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=4, gamma=0.1)]
train_cfg = dict(max_epochs=6)
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=1))
