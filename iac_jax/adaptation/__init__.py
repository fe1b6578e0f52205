"""The paper's method (van Rozendaal et al., ICLR 2021): finetune the global model on
one instance and send the quantized parameter update with the latents.

model_prior (the update's spike-and-slab prior) -> update_coding (quantize, rate-count
and range-code the update) -> objective (the RDM loss `beta * (R + M) + D`) ->
finetuning (`adapt`, one instance) -> batched (`adapt_many`, several under vmap) ->
video_codec (`encode_video`, and `decode` of every stream). Builds on `iac_jax.codec`
and `iac_jax.optim`.
"""
