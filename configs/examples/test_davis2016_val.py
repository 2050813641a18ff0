# `reusegate test` on DAVIS-2016 val: whole videos at the stored resolution, scored with davis2017-evaluation's
# protocol. The model is the exported one given with --model (default: the embedded default model); under
# torchrun the videos are sharded across processes and rank 0 gathers one J&F table.
#   reusegate test configs/examples/test_davis2016_val.py --out results/val
#   torchrun --standalone --nproc-per-node 2 -m reusegate.cli test configs/examples/test_davis2016_val.py --out results/val
_base_ = ['../_base_/default_runtime.py']

data_root = '{{$REUSEGATE_DATA:data}}/DAVIS'  # JPEGImages/480p, Annotations/480p, ImageSets/2016/val.txt
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='DavisVideoDataset', data_root=data_root, split='val', year=2016, size=None),
)
test_evaluator = dict(type='VOSMetric', set_name='val')
test_cfg = dict(type='TestLoop')
