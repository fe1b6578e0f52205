"""What the two optimization loops (global training and per-instance adaptation)
share: skipping non-finite steps, and resumable Orbax checkpoints (the only Orbax
user). Depends only on `iac_jax.io`."""
