# hard_base.py at a working height of 360 instead of 240 (480p at 3/4 instead of halved), in training and at
# run time: the frozen taps are cached at 360 (about 2.3x the pixels) and the decoder learns at that scale. The
# same weights run at 240 as well (adapter input_height), which is how a fast preset of one model is measured.
#   reusegate train configs/experiments/protocol/hard_h360.py --work-dir work_dirs/hard_h360 --no-progress
#   python tools/export_host_checkpoint.py configs/experiments/protocol/hard_h360.py \
#       work_dirs/hard_h360/epoch_20.pth work_dirs/hard_h360/host.pth
#   reusegate bench --model work_dirs/hard_h360/host.pth --davis ../shared/data/davis2016-train \
#       --sequences configs/splits/davis16_hard.txt --frames 0 --taus 1 --no-flops --threads 2
_base_ = ['hard_base.py']
adapter = dict(type='frtm', input_height=360)
model = dict(adapter=adapter)
train_dataloader = dict(dataset=dict(adapter=adapter))
