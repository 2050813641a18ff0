# YouTube-VOS 2018 train as Reuse_VOS uses it: 4000 one-object clips per epoch from videos with at least
# 8 annotated frames (clip_length + 2), frames drawn from the annotated ones (every 5th), batch 8, 854x480.
# The validation split has first-frame masks only, so there is no in-training validation: predict with
# `reusegate run` and submit to the benchmark server (experiment configs set val_cfg = test_cfg = None).
data_root = '{{$REUSEGATE_DATA:data}}/youtube-vos'

train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='YouTubeVOSClipDataset', data_root=data_root, split='train', clip_length=6,
                 size=(480, 854), samples_per_epoch=4000, order='random'),
)
val_dataloader = None
val_evaluator = None
test_dataloader = None
test_evaluator = None
