# Stage 2b of the accurate model: 24 more epochs of its stage 2 (configs/g_frtm_mnv2_h360/2_gate.py) from its last
# checkpoint, gate modules only, with a fresh Adam state at lr 3e-4 (3e-5 after epoch 16) on other clips
# (seed 1): the same continuation that brought the fast default's gate from 2.2 to 1.5 J&F of the oracle.
# About 55 min on 2 cores; checkpoints every 3 epochs, so an interrupted run continues with --resume:
#   reusegate train configs/g_frtm_mnv2_h360/3_gate_more.py --work-dir work_dirs/g_frtm_mnv2_h360_more \
#       --trust-load-from --cfg-options load_from=work_dirs/g_frtm_mnv2_h360/epoch_24.pth \
#       --export reusegate/zoo/weights/g_frtm_mnv2_h360.pth
_base_ = ['2_gate.py']
randomness = dict(seed=1)
optim_wrapper = dict(optimizer=dict(lr=3e-4))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=16, gamma=0.1)]
