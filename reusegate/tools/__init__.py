"""What the command line runs: video inference and result writing (:mod:`.run`), the speed / accuracy benchmark
(:mod:`.bench`), the per-stage profiler (:mod:`.profiling`), the demo (:mod:`.demo`) and inference-time weight
folding (:mod:`.optimize`)."""
