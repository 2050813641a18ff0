"""The method: the host interface and shared tensor helpers (:mod:`.host`), the run-time settings (:mod:`.config`),
the gate's layers (:mod:`.layers`), the per-frame paths shared by sessions and training (:mod:`.paths`), the wrapper
(:mod:`.gate`), per-video sessions (:mod:`.session`) and the training losses (:mod:`.losses`, :mod:`.training`).
Nothing here imports a host adapter."""
