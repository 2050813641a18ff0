# hard_h360.py with the backbone's deepest stage fine-tuned (issue 11's "fine-tuning the last backbone stages"):
# MobileNetV2's features.14-17 (the stride-32 tap, which feeds the decoder alone) train with the decoder at a
# tenth of its learning rate, BatchNorm statistics frozen. The frozen-tap cache then leaves s32 out and the
# adapter computes it from the cached s16 every step. s16 and earlier stay frozen: they feed the target models,
# which training fits once.
#   reusegate train configs/experiments/protocol/hard_h360_ft32.py --work-dir work_dirs/hard_h360_ft32 --no-progress
#   python tools/export_host_checkpoint.py configs/experiments/protocol/hard_h360_ft32.py \
#       work_dirs/hard_h360_ft32/epoch_20.pth work_dirs/hard_h360_ft32/host.pth
#   reusegate bench --model work_dirs/hard_h360_ft32/host.pth --davis ../shared/data/davis2016-train \
#       --sequences configs/splits/davis16_hard.txt --frames 0 --taus 1 --no-flops --threads 2
_base_ = ['hard_h360.py']
host = dict(finetune=['s32'])
model = dict(host=host)
train_dataloader = dict(dataset=dict(host=host))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
