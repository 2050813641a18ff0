# Runtime shared by every reusegate experiment. The scope makes every `type=` below resolve in reusegate's
# registries first (then mmengine's), with no custom_imports.
default_scope = 'reusegate'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# The gate-probability loss margin ramps with the epoch (paper eq. 4); the hook derives it from runner.epoch,
# so it is right after a resume too.
custom_hooks = [dict(type='GateMarginHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # `reusegate train` switches to gloo when CUDA is unavailable
)
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
