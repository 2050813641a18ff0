# The paper's optimiser (Adam with amsgrad, weight decay 1e-5) for the frozen-tap CPU recipes, stepped by epoch;
# each recipe sets its own lr, step and number of epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=3e-4, betas=(0.9, 0.999), weight_decay=1e-5, amsgrad=True),
)
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=16, gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20)
