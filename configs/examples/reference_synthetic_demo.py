# The gated reference host trained on procedural clips only (reusegate.data.synthetic: licence-clean, no external
# images), in two stages of a few CPU minutes. Stage 2, on top of the host pre-trained by
# configs/examples/reference_synthetic_pretrain.py:
#   reusegate train configs/examples/reference_synthetic_pretrain.py --work-dir work_dirs/demo_pretrain
#   reusegate train configs/examples/reference_synthetic_demo.py --work-dir work_dirs/demo \
#       --trust-load-from --cfg-options load_from=work_dirs/demo_pretrain/epoch_16.pth --export work_dirs/reference_synthetic.pth
# The network runs at half the 240x432 frame size (input_scale=0.5); the margin ramps over the first half.
_base_ = [
    '../_base_/schedules/adam_step_cpu.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='ReuseGateVOS',
    host=dict(type='reference', width=32, refined_channels=32, input_scale=0.5),
    adapter='reference',
    gate=dict(tau=0.7, variant='decode', m1=0.5, m2=0.0, ep_t=4),
    data_preprocessor=dict(type='BaseDataPreprocessor'),
)
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='SyntheticClipDataset', num_clips=128, clip_length=6, size=(240, 432)),
)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=100)
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=9, gamma=0.1)]
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
default_hooks = dict(logger=dict(interval=6))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
