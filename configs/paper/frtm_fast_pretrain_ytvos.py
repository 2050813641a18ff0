# Pre-training on YouTube-VOS without the gate modules (paper §4.3); the gated run loads it with load_from.
_base_ = ['./g_frtm_fast_ytvos.py']
model = dict(gate=None)
custom_hooks = []
