# Stage 2c of the fast model, the shipped one: its finished gate (stage 2b) with the paper's GateHead replaced by
# the change gate (reusegate.core.layers.ChangeGate) read around the last computed frame's output mask
# (gate_input='change_mask': the coarse score also fires on look-alikes of the object), and reused frames decoding
# the cached score and refined feature as they are (reuse_path='hold'), docs/experiments/change-gate-and-hold.md. Only the change gate's four parameters train; everything else is frozen in eval mode. Same clips,
# schedule and starting checkpoint as configs/experiments/g_frtm_mnv2_change_gate.py (the score-region gate it
# replaced, and this config's base), about 4 min on 2 cores. The gate's variant and tau2 do not enter training:
# they are the inference point --export records in the .json (recommended_tau 0.75, recommended_variant
# 'fusion', recommended_tau2 0.825: a reused frame whose p_reuse exceeds 0.825 copies the previous mask instead
# of decoding; docs/experiments/fusion-point.md):
#   reusegate train configs/g_frtm_mnv2/4_change_mask.py --work-dir work_dirs/g_frtm_mnv2_mask \
#       --trust-load-from --cfg-options load_from=work_dirs/g_frtm_mnv2_more/epoch_24.pth \
#       --export reusegate/zoo/weights/g_frtm_mnv2.pth
_base_ = ['../experiments/g_frtm_mnv2_change_gate.py']
model = dict(gate=dict(gate_input='change_mask', variant='fusion', tau2=0.825))
