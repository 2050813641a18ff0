# The paper's recipe for G-FRTM-fast on DAVIS-2016 (§4, Reuse_VOS train.py): batch 8, 6-frame clips,
# Adam 5e-4 amsgrad, StepLR 127 / 0.1, 260 epochs, M(1, 0) with ep_T = 120, ~15 % initial reuse.
# Start from a host trained without the gate modules (configs/paper/frtm_fast_pretrain_davis16.py, or an upstream FRTM
# checkpoint through host.checkpoint): the parameter names of the host match, the gate modules start fresh.
#   reusegate train configs/paper/g_frtm_fast_davis16.py --trust-load-from --cfg-options load_from=work_dirs/frtm_fast_pretrain_davis16/epoch_260.pth
_base_ = [
    '../_base_/models/g_frtm_fast.py',
    '../_base_/datasets/davis2016.py',
    '../_base_/schedules/adam_step_260e.py',
    '../_base_/default_runtime.py',
]
