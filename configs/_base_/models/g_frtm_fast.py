# G-FRTM-fast: FRTM with a ResNet-18 backbone (frozen) and the reuse gate. The paper's DAVIS setting M(1, 0):
# the margin ramps to m1 = 1 over ep_T = 120 epochs, m2 = 0; the gate head starts at ~15 % reuse
# (reusegate.core.layers.INITIAL_REUSE_PROBABILITY).
model = dict(
    type='ReuseGateVOS',
    host=dict(type='frtm', backbone='resnet18', backbone_weights=None, checkpoint=None),
    adapter='frtm',
    gate=dict(tau=0.7, variant='decode', m1=1.0, m2=0.0, ep_t=120, gate_loss='gp', train_tau=0.5),
    data_preprocessor=dict(type='BaseDataPreprocessor'),
)
