# hard_base.py with the prior-mask decoder (FRTM(prior_mask=True)): the deep stages also read the object's
# previous output mask, pooled to the score grid, next to the target model's score. Training clips are ordered
# (at most 3 annotated frames apart) so that each frame's prior is its predecessor's own output, as at run time;
# the frozen taps and target-model scores are the same cache as hard_base.py's (the dataset's host is unchanged).
#   reusegate train configs/cpu/protocol/hard_prior.py --work-dir work_dirs/hard_prior --no-progress
#   python benchmarks/export_host_checkpoint.py configs/cpu/protocol/hard_prior.py \
#       work_dirs/hard_prior/epoch_20.pth work_dirs/hard_prior/host.pth
#   reusegate bench --model work_dirs/hard_prior/host.pth --davis ../shared/data/davis2016-train \
#       --sequences configs/splits/davis16_hard.txt --frames 0 --taus 1 --no-flops --threads 2
_base_ = ['hard_base.py']
model = dict(host=dict(prior_mask=True))
train_dataloader = dict(dataset=dict(sampling='ordered', max_skip=3))
