# Issue 11's screening protocol: the default model's stage-1 recipe (configs/g_frtm_mnv2/1_pretrain.py, unchanged)
# trained on the 24 sequences outside the hard split (splits/davis16_hard.txt) and scored at tau = 1 on the hard
# split's 6 sequences, which no setting was tuned on. Every other config here changes one thing against this one.
#   reusegate train configs/experiments/protocol/hard_base.py --work-dir work_dirs/hard_base
#   python tools/export_host_checkpoint.py configs/experiments/protocol/hard_base.py \
#       work_dirs/hard_base/epoch_20.pth work_dirs/hard_base/host.pth
#   reusegate bench --model work_dirs/hard_base/host.pth --davis ../shared/data/davis2016-train \
#       --sequences configs/splits/davis16_hard.txt --frames 0 --taus 1 --no-flops --threads 2
_base_ = ['../../g_frtm_mnv2/1_pretrain.py']
train_dataloader = dict(dataset=dict(sequences='{{fileDirname}}/../../splits/davis16_hard_train.txt'))
