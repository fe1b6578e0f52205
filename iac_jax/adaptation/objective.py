"""The RDM objective of instance adaptation: `L = beta * (R + M) + D`.

R and D are those of the global model's objective (`iac_jax.codec.losses`): latent
bits per pixel and the MSE on the 255 scale. M is the model rate, the bits of the
quantized parameter update under its prior (`update_coding.model_rate_bits`), paid
once per video and so spread over all of its I-frames' pixels (van Rozendaal et al.,
ICLR 2021).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from iac_jax.adaptation import update_coding
from iac_jax.adaptation.model_prior import ModelPrior
from iac_jax.codec.hyperprior import MeanScaleHyperprior


def rate_distortion_model_rate(
    trainable: dict, theta_global: dict, frames: jax.Array, rng: jax.Array, *,
    model: MeanScaleHyperprior, beta: float, prior: ModelPrior, video_pixels: int,
    quantize: bool = True, with_model_rate: bool = True) -> tuple[jax.Array, dict]:
  """The instance-adaptive objective `beta * (R + M) + D` (van Rozendaal et al. 2021).

  Args:
    trainable: {'phi': encoder-side params, 'delta': update of the decoder side}.
    theta_global: the decoder-side params of the global model (fixed).
    frames: float32[B, H, W, 3] in [0, 1], a batch of the video's I-frames (or crops).
    rng: noise for the latents' rate and for the model-rate surrogate.
    prior: the `ModelPrior` of the update.
    video_pixels: pixels of all I-frames of the video; M is paid once per video,
      so it is spread over these pixels, while R and D are batch averages.
    quantize: use `theta_global + t round(delta / t)` in the forward pass
      (quantization-aware finetuning), else `theta_global + delta`.
    with_model_rate: include M in the loss (it is always reported).

  Returns (loss, metrics) with `bpp` (latents), `model_bpp`, `model_bits`, `mse_255`.
  """
  rng_latents, rng_model = jax.random.split(rng)
  delta = trainable['delta']
  used = update_coding.quantize_update(delta, prior.t) if quantize else delta
  theta = jax.tree.map(lambda g, d: g + d, theta_global, used)
  params = {**trainable['phi'], **theta}
  out = model.apply({'params': params}, frames, rng_latents, training=True)
  num_pixels = frames.shape[0] * frames.shape[1] * frames.shape[2]
  bpp = (jnp.sum(out['y_bits']) + jnp.sum(out['z_bits'])) / num_pixels
  mse_255 = jnp.mean(jnp.square(out['x_hat'] - frames)) * 255.0**2
  model_bits = update_coding.model_rate_bits(delta, prior, rng_model)
  model_bpp = model_bits / video_pixels
  loss = beta * (bpp + (model_bpp if with_model_rate else 0.0)) + mse_255
  return loss, {'loss': loss, 'bpp': bpp, 'model_bpp': model_bpp,
                'model_bits': model_bits, 'mse_255': mse_255}
