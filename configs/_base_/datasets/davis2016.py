# DAVIS-2016: training clips as in Reuse_VOS (batch 8, 6 frames, one object, 854x480, each sequence 8 times
# per epoch, random unsorted frames after a random visible reference); whole videos for validation at the
# stored resolution, scored with davis2017-evaluation's protocol.
# The standard DAVIS download (JPEGImages/480p, Annotations/480p, ImageSets/2016/{train,val}.txt).
data_root = '{{$REUSEGATE_DATA:data}}/DAVIS'

train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='DavisClipDataset', data_root=data_root, split='train', year=2016, clip_length=6, size=(480, 854),
                 samples_per_object=8, sampling='random'),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='DavisVideoDataset', data_root=data_root, split='val', year=2016, size=None),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='VOSMetric')
test_evaluator = dict(type='VOSMetric', out_dir='results/davis2016')
