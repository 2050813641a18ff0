"""FRTM host (Robinson et al., CVPR 2020) for the reuse gate: backbones, refiner, target model, adapter."""
