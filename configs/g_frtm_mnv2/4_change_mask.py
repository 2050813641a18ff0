# Stage 2c of the fast model, the shipped one: its finished gate (stage 2b) with the paper's GateHead replaced by
# the change gate (reusegate.modules.ChangeGate) read around the last computed frame's output mask
# (gate_input='change_mask': the coarse score also fires on look-alikes of the object), and reused frames decoding
# the cached score and refined feature as they are (reuse_path='hold'), README "The change gate and the hold
# path". Only the change gate's four parameters train; everything else is frozen in eval mode. Same clips,
# schedule and starting checkpoint as g_frtm_mnv2_change_gate_cpu.py (the score-region gate it replaced), about
# 4 min on 2 cores. The gate's variant and tau2 do not enter training: they are the inference point --export
# records in the .json (recommended_tau 0.75, recommended_variant 'fusion', recommended_tau2 0.825: a reused frame
# whose p_reuse exceeds 0.825 copies the previous mask instead of decoding; README "The fusion point"):
#   reusegate train configs/cpu/g_frtm_mnv2_change_mask_cpu.py --work-dir work_dirs/g_frtm_mnv2_mask \
#       --trust-load-from --cfg-options load_from=work_dirs/g_frtm_mnv2_more/epoch_24.pth \
#       --export reusegate/weights/g_frtm_mnv2.pth
_base_ = ['g_frtm_mnv2_change_gate_cpu.py']
model = dict(gate=dict(gate_input='change_mask', variant='fusion', tau2=0.825))
