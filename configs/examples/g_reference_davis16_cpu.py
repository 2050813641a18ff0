# The gated reference host on a CPU-sized DAVIS-2016 slice: 30 short epochs, about 75 s on two idle cores
# (OMP_NUM_THREADS=1), reaching J&F ~0.23 on two held-out videos at 96x160. A smoke test, not a benchmark.
#   reusegate train configs/examples/g_reference_davis16_cpu.py --work-dir work_dirs/g_reference_cpu
# ep_t is half the run so that the margin schedule plays out within it (paper: 120 of 260 epochs).
_base_ = [
    '../_base_/datasets/davis2016_tiny_cpu.py',
    '../_base_/schedules/adam_step_cpu.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='ReuseGateVOS',
    host=dict(type='reference', width=8, refined_channels=16),
    adapter='reference',
    gate=dict(tau=0.7, variant='decode', m1=1.0, m2=0.0, ep_t=15),
    data_preprocessor=dict(type='BaseDataPreprocessor'),
)
optim_wrapper = dict(optimizer=dict(lr=3e-3))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=24, gamma=0.1)]
train_cfg = dict(max_epochs=30, val_interval=10)
train_dataloader = dict(dataset=dict(samples_per_object=8))
default_hooks = dict(logger=dict(interval=4))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
