# Stage 1 of the fast model (configs/g_frtm_mnv2/1_pretrain.py) on DAVIS-2016 AND pseudo-video from still images
# (issue 28; docs/training.md, "Pseudo-video from still images"): each epoch draws fresh clips from the 2,173
# photographs of ../shared/data/still-images (ECSSD, Penn-Fudan, CCP: moving, deforming, occluding objects,
# pasted on other photos, with same-class distractors) beside the same 24 DAVIS sequences. Fresh clips cannot
# use frozen taps: every clip runs the backbone and fits its target model, so an epoch costs several times a
# frozen-tap epoch (benchmarks/bench_still_images.py estimates it). Checkpoints every epoch: stop and
# `--resume` at will; EpochSeedHook makes a resumed run draw the clips of an unbroken one.
#   reusegate train configs/experiments/pseudo_video_pretrain.py --work-dir work_dirs/pseudo_video_pretrain
# Not trained yet: the schedule (epochs, mix, lr) is a starting point for the screening of issue 28.
_base_ = ['../g_frtm_mnv2/1_pretrain.py']
clip_size = (240, 427)  # 480p halved: the fast model's working height, so the adapter does not resize again
davis_root = '{{$REUSEGATE_DATA:../shared/data}}/davis2016-train'
stills_root = '{{$REUSEGATE_DATA:../shared/data}}/still-images'
train_dataloader = dict(batch_size=8, dataset=dict(_delete_=True, type='ConcatDataset', datasets=[
    dict(type='DavisClipDataset', data_root=davis_root, year=2016, size=clip_size,
         sequences='{{fileDirname}}/../splits/davis16_train_minus_dev.txt', clip_length=6, samples_per_object=8,
         sampling='ordered', max_skip=3),
    # 192 pseudo-clips per epoch, as many as DAVIS's 24 x 8: half of every batch is still-image video. Each draws
    # its photo afresh; Penn-Fudan (several pedestrians: look-alike objects) gets 30 % of the clips, not its 8 %.
    dict(type='StillImageClipDataset', data_root=stills_root, sets=('ecssd', 'pennfudan', 'ccp'), clip_length=6,
         size=clip_size, num_objects=(1, 3), paste_prob=0.5, distractor_prob=0.3, samples_per_epoch=192, seed=28,
         set_weights=dict(ecssd=0.4, pennfudan=0.3, ccp=0.3),
         motion=dict(max_shift=0.03, max_rotation=4.0, max_scale=0.04, max_deform=0.006)),
]))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=16)
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=12, gamma=0.1)]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
