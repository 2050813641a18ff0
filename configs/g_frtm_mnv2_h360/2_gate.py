# Stage 2 of the accurate model: the fast model's stage 2 (configs/g_frtm_mnv2/2_gate.py: gate modules only,
# the host frozen, DAVIS clips plus 12 procedural clips) at a working height of 360, on all 30 DAVIS-2016
# training sequences, from the accurate stage 1 (about 55 min on 2 cores). Checkpoints every 3 epochs; an
# interrupted run continues with --resume (same command, plus --resume); stage 2b
# (configs/g_frtm_mnv2_h360/3_gate_more.py) continues from its epoch_24.pth:
#   reusegate train configs/g_frtm_mnv2_h360/2_gate.py --work-dir work_dirs/g_frtm_mnv2_h360 \
#       --trust-load-from --cfg-options load_from=work_dirs/frtm_mnv2_h360_pretrain/epoch_20.pth \
#       --export work_dirs/g_frtm_mnv2_h360/g_frtm_mnv2_h360.pth
_base_ = ['../g_frtm_mnv2/2_gate.py']
adapter = dict(type='frtm', input_height=360)
model = dict(adapter=adapter)
_frozen = dict(clip_length=6, sampling='ordered', max_skip=3, precompute_score=True, cache_dir='work_dirs/.frozen_taps',
               host={{_base_.host}}, adapter=adapter)
train_dataloader = dict(dataset=dict(_delete_=True, type='ConcatDataset', datasets=[
    dict(type='FrozenFeatureClipDataset', data_root={{_base_.data_root}}, year=2016, sequences=None,
         samples_per_object=8, **_frozen),
    dict(type='ProceduralFrozenClipDataset', num_clips=12, length=40, seed=5000, samples_per_object=4, **_frozen),
]))
default_hooks = dict(checkpoint=dict(interval=3))
