# hard_h360.py with a wider decoder (issue 11's "a wider decoder"): the stride-32 and stride-16 stages at 96
# channels instead of 64 (the refined tap widens with them); stride-8, stride-4 and head unchanged.
#   reusegate train configs/experiments/protocol/hard_h360_wide.py --work-dir work_dirs/hard_h360_wide --no-progress
#   python tools/export_host_checkpoint.py configs/experiments/protocol/hard_h360_wide.py \
#       work_dirs/hard_h360_wide/epoch_20.pth work_dirs/hard_h360_wide/host.pth
#   reusegate bench --model work_dirs/hard_h360_wide/host.pth --davis ../shared/data/davis2016-train \
#       --sequences configs/splits/davis16_hard.txt --frames 0 --taus 1 --no-flops --threads 2
_base_ = ['hard_h360.py']
host = dict(channels=96, s8_channels=64)
model = dict(host=host)
train_dataloader = dict(dataset=dict(host=host))
