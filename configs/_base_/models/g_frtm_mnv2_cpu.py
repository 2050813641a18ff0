# The default model's host: FRTM on the frozen ImageNet MobileNetV2 (offline wheel), narrow decoder (stride-4
# stage 32 ch, head 16 ch), working at a height of 240 (480p halved) whatever the video's size; target models
# fitted on the score grid ('score_exact': the same solution as upstream's full-resolution fit, ~6x cheaper on
# a CPU).
host = dict(type='frtm', backbone='mobilenet_v2', backbone_weights='imagenet', s4_channels=32, head_channels=16,
            target_params=dict(preset='inference_fast', fit_resolution='score_exact'))
adapter = dict(type='frtm', input_height=240)
model = dict(
    type='ReuseGateVOS',
    host=host,
    adapter=adapter,
    gate=dict(tau=0.7, variant='translate', m1=0.5, m2=0.0, ep_t=6, gate_loss='gp', train_tau=0.5),
    data_preprocessor=dict(type='BaseDataPreprocessor'),
)
