# Gating from config alone: ExampleVOSNet (a previous-mask encoder-decoder host registered in MODELS as
# 'example_vos') wrapped by the module-tap adapter, which reads the taps from submodule names.
_base_ = ['./g_reference_davis16_cpu.py']
model = dict(
    host=dict(_delete_=True, type='example_vos', width=8, refined_channels=16),
    adapter=dict(
        _delete_=True,
        type='module_tap',
        shallow=['stem', 'enc1', 'enc2'],          # always run (/2, /4, /8); enc2 is the matched feature
        deep=['enc3', 'enc4'],                     # skipped on reused frames (/16, /32)
        score='previous_mask',                     # S = logit of the last computed frame's mask, at /16
        deep_decoder=dict(module='dec_deep', inputs=['enc4', 'enc3']),        # -> R at /16
        shallow_decoder=dict(module='dec_shallow', inputs=['enc2', 'enc1']),  # -> logits at /4
        mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
)
