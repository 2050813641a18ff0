# The paper's schedule (§4; Reuse_VOS train.py): Adam with amsgrad, lr 5e-4 (FRTM used 1e-3), weight decay
# 1e-5, step decay x0.1 every 127 epochs, 260 epochs, a checkpoint and a validation every epoch.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=5e-4, betas=(0.9, 0.999), weight_decay=1e-5, amsgrad=True),
)
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=127, gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=260, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
