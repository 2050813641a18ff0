# DAVIS-2016 train (../shared/data or $REUSEGATE_DATA) as precomputed frozen taps: the 24 sequences of
# splits/davis16_train_minus_dev.txt train; splits/davis16_dev.txt (bear, dog-agility, hike, lucia,
# motocross-bumps, rhino) is held out for the README's figures. The cache (~1 GB) is built on first use.
data_root = '{{$REUSEGATE_DATA:../shared/data}}/davis2016-train'
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='FrozenFeatureClipDataset', data_root=data_root, year=2016,
                 sequences='{{fileDirname}}/../../splits/davis16_train_minus_dev.txt',
                 host=dict(), adapter=dict(), precompute_score=True, cache_dir='work_dirs/.frozen_taps',
                 clip_length=6, samples_per_object=8, sampling='ordered', max_skip=3),
)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
