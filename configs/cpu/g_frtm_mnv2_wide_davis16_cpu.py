# The upstream-width decoder with the reuse gate, stage 2 (same recipe as g_frtm_mnv2_davis16_cpu.py):
#   reusegate train configs/cpu/g_frtm_mnv2_wide_davis16_cpu.py --work-dir work_dirs/g_frtm_mnv2_wide \
#       --cfg-options load_from=work_dirs/frtm_mnv2_wide_pretrain/epoch_10.pth --export work_dirs/g_frtm_mnv2_wide.pth
_base_ = ['./g_frtm_mnv2_davis16_cpu.py']
wide = dict(s4_channels=None, head_channels=32)
model = dict(host=wide)
train_dataloader = dict(dataset=dict(host=wide))
