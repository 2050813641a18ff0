# G-FRTM-fast on YouTube-VOS (paper §4.3, Table 4): the margin relaxed to M(0.5, 0), after pre-training the
# host without the gate modules (configs/paper/frtm_fast_pretrain_ytvos.py) because YouTube-VOS has fewer
# similar frames.
#   reusegate train configs/paper/g_frtm_fast_ytvos.py --trust-load-from --cfg-options load_from=work_dirs/frtm_fast_pretrain_ytvos/epoch_260.pth
_base_ = [
    '../_base_/models/g_frtm_fast.py',
    '../_base_/datasets/youtube_vos.py',
    '../_base_/schedules/adam_step_260e.py',
    '../_base_/default_runtime.py',
]
model = dict(gate=dict(m1=0.5))
val_cfg = None  # no validation split with dense ground truth
test_cfg = None
