# Stage 2c of the fast model with the change gate under the last computed score, the gate the fast model shipped with
# before configs/g_frtm_mnv2/4_change_mask.py (which builds on this config) read around the output mask instead: its
# finished gate (stage 2b) with the paper's GateHead replaced by the change gate (reusegate.core.layers.ChangeGate)
# and reused frames decoding the cached score and refined feature as they are (reuse_path='hold'), docs/experiments/change-gate-and-hold.md. Only the change gate's four parameters train; everything else is frozen in eval mode. Same
# clips as stage 2 (24 DAVIS-2016 sequences without the development split, 12 procedural clips), 6 epochs, about 4 min
# on 2 cores, tau = 0.75:
#   reusegate train configs/experiments/g_frtm_mnv2_change_gate.py --work-dir work_dirs/g_frtm_mnv2_hold \
#       --trust-load-from --cfg-options load_from=work_dirs/g_frtm_mnv2_more/epoch_24.pth --export OUT.pth
_base_ = ['../g_frtm_mnv2/3_gate_more.py']
model = dict(gate=dict(gate_input='change', reuse_path='hold', tau=0.75), train_only=['gate_modules.change_gate'])
randomness = dict(seed=2)
optim_wrapper = dict(optimizer=dict(lr=1e-2))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=4, gamma=0.1)]
train_cfg = dict(max_epochs=6)
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=1))
