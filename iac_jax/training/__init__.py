"""Training the global models: data (random crops of photos), trainer (the jitted
step and loop, checkpointed and resumable), campaign (several betas, snapshots
shipped to iac_jax/weights). Builds on `io`, `codec`, `optim` and `evaluation`."""
