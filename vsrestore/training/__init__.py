"""Training support: data readers, degradations, tasks and the training loop (no VapourSynth)."""
