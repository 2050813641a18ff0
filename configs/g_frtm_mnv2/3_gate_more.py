# Stage 2b of the fast model: 24 more epochs of stage 2 (configs/g_frtm_mnv2/2_gate.py) from its last
# checkpoint, for the gate modules only (the host stays frozen). Stage 2's losses were still falling when its
# schedule ended (loss_delta 0.031 at epoch 12, 0.021 at 24); this continues with a fresh Adam state at lr 3e-4
# (3e-5 after epoch 16) on other clips (seed 1), so that the whole run fits a working session in two stages:
#   reusegate train configs/g_frtm_mnv2/3_gate_more.py --work-dir work_dirs/g_frtm_mnv2_more \
#       --trust-load-from --cfg-options load_from=work_dirs/g_frtm_mnv2/epoch_24.pth \
#       --export reusegate/zoo/weights/g_frtm_mnv2.pth
_base_ = ['2_gate.py']
randomness = dict(seed=1)
optim_wrapper = dict(optimizer=dict(lr=3e-4))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=16, gamma=0.1)]
