# The gated reference host on a CPU-sized DAVIS-2016 slice: trains in a few minutes on two cores.
#   reusegate train configs/cpu/g_reference_davis16_cpu.py --work-dir work_dirs/g_reference_cpu
# ep_t is short so that the margin schedule is visible within the run (paper: 120 of 260 epochs).
_base_ = [
    '../_base_/datasets/davis2016_tiny_cpu.py',
    '../_base_/schedules/adam_step_cpu.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='ReuseGateVOS',
    host=dict(type='reference', width=8, refined_channels=16),
    adapter='reference',
    gate=dict(tau=0.7, variant='translate', m1=1.0, m2=0.0, ep_t=4),
    data_preprocessor=dict(type='BaseDataPreprocessor'),
)
default_hooks = dict(logger=dict(interval=2))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
