# The paper's optimiser on a few epochs: Adam amsgrad, step decay late in the run.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-5, amsgrad=True),
)
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=4, gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=5, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
