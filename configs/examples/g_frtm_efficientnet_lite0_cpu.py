# FRTM on a third-party backbone: EfficientNet-Lite0 from the example plugin distribution, installed on its own
# (pip install --no-deps ./integrations/plugins/efficientnet_lite0; docs/plugins.md). The
# config names the backbone like any built-in one: the plugin's hook registered it in MODELS.
# Smoke-sized (2 epochs of 2 iterations on 3-frame clips of one sequence, about 15 s on one core): it shows
# the plugin path end to end, it is not a benchmark. tests/test_plugins.py runs exactly the README's commands.
_base_ = [
    '../_base_/datasets/davis2016_tiny_cpu.py',
    '../_base_/schedules/adam_step_cpu.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='ReuseGateVOS',
    # weights='imagenet': the plugin's offline ImageNet file; named weights are rebuilt on load, not exported
    host=dict(type='frtm', backbone=dict(type='efficientnet_lite0', weights='imagenet'),
              s4_channels=16, head_channels=16,
              target_params=dict(preset='training', num_aug=3, init_iters=[5, 5], memory_size=8)),
    adapter=dict(type='frtm', input_height=96),  # frames of any size run at the training height
    gate=dict(tau=0.7, variant='decode', m1=1.0, m2=0.0, ep_t=2),
    data_preprocessor=dict(type='BaseDataPreprocessor'),
)
train_dataloader = dict(batch_size=2, dataset=dict(sequences=['dog-agility'], clip_length=3, samples_per_object=4))
train_cfg = dict(max_epochs=2, val_interval=100)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
val_dataloader, val_cfg, val_evaluator = None, None, None  # `reusegate run` evaluates the exported model
