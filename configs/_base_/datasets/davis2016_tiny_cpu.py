# A CPU-sized slice of DAVIS-2016 train (../shared/data or $REUSEGATE_DATA): four sequences at 96x160 for
# training, the first 12 frames of two others for validation. Minutes on two cores, not a benchmark.
data_root = '{{$REUSEGATE_DATA:../shared/data}}/davis2016-train'
train_sequences = ['bear', 'boat', 'car-turn', 'elephant']
val_sequences = ['dog-agility', 'rhino']

train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='DavisClipDataset', data_root=data_root, sequences=train_sequences, year=2016,
                 clip_length=6, size=(96, 160), samples_per_object=4, sampling='ordered', max_skip=3),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='DavisVideoDataset', data_root=data_root, sequences=val_sequences, year=2016,
                 size=(96, 160), max_frames=12),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='VOSMetric')
test_evaluator = val_evaluator
