# As hard_lite2.py, with EfficientNet-Lite0 (ImageNet top-1 75.1 %): the plugin's smallest backbone, to tell whether
# Lite2's loss against MobileNetV2 comes with the family's features or with Lite2's size.
_base_ = ['hard_base.py']
host = dict(backbone='efficientnet_lite0')
model = dict(host=host)
train_dataloader = dict(dataset=dict(host=host))
