# Pre-training of the reference host without the gate modules (gate=None), the CPU twin of
# configs/paper/frtm_fast_pretrain_davis16.py. Fine-tune the gated model from it:
#   reusegate train configs/examples/g_reference_davis16_cpu.py --trust-load-from --cfg-options load_from=work_dirs/reference_pretrain_cpu/epoch_30.pth
_base_ = ['./g_reference_davis16_cpu.py']
model = dict(gate=None)
custom_hooks = []
