# Stage 2c of the accurate model with the change gate read around the last computed frame's output mask
# (gate_input='change_mask'), otherwise as configs/g_frtm_mnv2_h360/4_change_gate.py, about 11 min on 2 cores:
#   reusegate train configs/experiments/g_frtm_mnv2_h360_change_mask.py --work-dir work_dirs/g_frtm_mnv2_h360_mask \
#       --trust-load-from --cfg-options load_from=work_dirs/g_frtm_mnv2_h360_more/epoch_24.pth \
#       --export reusegate/zoo/weights/g_frtm_mnv2_h360.pth
_base_ = ['../g_frtm_mnv2_h360/4_change_gate.py']
model = dict(gate=dict(gate_input='change_mask'))
