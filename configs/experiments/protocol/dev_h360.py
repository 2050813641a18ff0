# The fast model's stage 1 (configs/g_frtm_mnv2/1_pretrain.py: trained on the 24 sequences outside the
# development split) at a working height of 360: the accurate recipe's second held-out figure, on the split the
# fast model's README table uses (77.9 at tau = 1), besides the hard split (hard_h360.py).
#   reusegate train configs/experiments/protocol/dev_h360.py --work-dir work_dirs/dev_h360 --no-progress
#   python tools/export_host_checkpoint.py configs/experiments/protocol/dev_h360.py \
#       work_dirs/dev_h360/epoch_20.pth work_dirs/dev_h360/host.pth
#   reusegate bench --model work_dirs/dev_h360/host.pth --davis ../shared/data/davis2016-train \
#       --sequences configs/splits/davis16_dev.txt --frames 0 --taus 1 --no-flops --threads 2
_base_ = ['../../g_frtm_mnv2/1_pretrain.py']
adapter = dict(type='frtm', input_height=360)
model = dict(adapter=adapter)
train_dataloader = dict(dataset=dict(adapter=adapter))
