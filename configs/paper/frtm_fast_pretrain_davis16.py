# Pre-training without the gate modules (paper §4.3: the skipped sub-network needs training time of its own):
# the same host, data and schedule, gate=None (segmentation BCE on every frame, no template matcher, gate,
# delta generator or refine-translator). Fine-tune the gated model from its last checkpoint with load_from.
_base_ = ['./g_frtm_fast_davis16.py']
model = dict(gate=None)
custom_hooks = []  # no gate, no margin
