# hard_h360.py at a working height of 420 (480p at 7/8): does resolution keep paying past 360 (74.6 on the hard
# split, +5.6 over 240)? The frozen taps are cached at 420 (about 1.36x the pixels of 360) and the decoder learns
# at that scale; about 45 min on 2 cores.
#   reusegate train configs/experiments/protocol/hard_h420.py --work-dir work_dirs/hard_h420 --no-progress
#   python tools/export_host_checkpoint.py configs/experiments/protocol/hard_h420.py \
#       work_dirs/hard_h420/epoch_20.pth work_dirs/hard_h420/host.pth
#   reusegate bench --model work_dirs/hard_h420/host.pth --davis ../shared/data/davis2016-train \
#       --sequences configs/splits/davis16_hard.txt --frames 0 --taus 1 --no-flops --threads 2
_base_ = ['hard_base.py']
adapter = dict(type='frtm', input_height=420)
model = dict(adapter=adapter)
train_dataloader = dict(dataset=dict(adapter=adapter))
