# The embedded models' host: FRTM on the frozen ImageNet MobileNetV2 (offline wheel), working at a height of 240
# (480p halved) whatever the video's size; target models fitted on the score grid ('score_exact': the same
# solution as upstream's full-resolution fit, ~6x cheaper on a CPU). The decoder keeps upstream's 64 channels in
# the stride-32/16/8 stages, narrows the stride-4 stage to 32 and predicts the logit at stride 2 (head='stride2'):
# the upstream head's full-resolution work was a third of every frame on a CPU (docs/experiments/where-time-goes.md). Narrower still (s8 32, s4 24 channels, logit at stride 4) lost 2.4 J&F on the development split.
host = dict(type='frtm', backbone='mobilenet_v2', backbone_weights='imagenet', s4_channels=32,
            head='stride2', head_channels=16,
            target_params=dict(preset='inference_fast', fit_resolution='score_exact'))
adapter = dict(type='frtm', input_height=240)
model = dict(
    type='ReuseGateVOS',
    host=host,
    adapter=adapter,
    gate=dict(tau=0.7, variant='decode', m1=0.5, m2=0.0, ep_t=6, gate_loss='gp', train_tau=0.5),
    data_preprocessor=dict(type='BaseDataPreprocessor'),
)
