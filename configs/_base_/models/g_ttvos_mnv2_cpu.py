# The second shipped model's host: TTVOS on the frozen ImageNet MobileNetV2 at output stride 16 (offline wheel;
# its own decoder widths follow from the backbone: s4 24 ch, s8 32 ch, s16 320 ch), working at a height of 240
# (480p halved) whatever the video's size, as the default G-FRTM does. The adapter's open choices keep the
# research notes' proposal (docs/ttvos.md): the history takes reused frames' estimates, the template does not.
host = dict(type='ttvos', backbone='mobilenet_v2s16', backbone_weights='imagenet')
adapter = dict(type='ttvos', input_height=240, history_on_reuse='push', template_on_reuse=False)
model = dict(
    type='ReuseGateVOS',
    host=host,
    adapter=adapter,
    gate=dict(tau=0.7, variant='decode', m1=0.0, m2=0.0, ep_t=6, gate_loss='gp', train_tau=0.5),
    data_preprocessor=dict(type='BaseDataPreprocessor'),
)
