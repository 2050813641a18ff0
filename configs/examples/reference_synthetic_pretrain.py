# Stage 1 of the procedural-clip reference model: the reference host alone (gate=None) on procedural clips,
# so that its full path is trained before the gate learns to skip it (the paper starts from a trained FRTM).
#   reusegate train configs/examples/reference_synthetic_pretrain.py --work-dir work_dirs/demo_pretrain
_base_ = ['./reference_synthetic_demo.py']
model = dict(gate=None)
custom_hooks = []
load_from = None
train_cfg = dict(max_epochs=16)
optim_wrapper = dict(optimizer=dict(lr=3e-3))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=12, gamma=0.1)]
