"""Rate-distortion objective of the global model: `L = beta * R + D`.

R is in bits per pixel (bits of `y` and `z` over the pixel count), D is the mean
squared error on the 255 scale, so `beta = 1 / lambda` of CompressAI's
`lambda * 255^2 * MSE + bpp`. Larger beta, lower rate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from iac_jax.hyperprior import MeanScaleHyperprior


def psnr_db(mse_255: jax.Array) -> jax.Array:
  """PSNR of 8-bit images from the MSE on the 255 scale."""
  return 10.0 * jnp.log10(255.0**2 / jnp.maximum(mse_255, 1e-10))


def rate_distortion(params: dict, model: MeanScaleHyperprior, x: jax.Array,
                    rng: jax.Array | None, beta: float | jax.Array,
                    training: bool = True) -> tuple[jax.Array, dict]:
  """Returns `(beta * bpp + mse_255, metrics)` for float32[B, H, W, 3] in [0, 1]."""
  out = model.apply({'params': params}, x, rng, training=training)
  num_pixels = x.shape[0] * x.shape[1] * x.shape[2]
  y_bpp = jnp.sum(out['y_bits']) / num_pixels
  z_bpp = jnp.sum(out['z_bits']) / num_pixels
  mse_255 = jnp.mean(jnp.square(out['x_hat'] - x)) * 255.0**2
  bpp = y_bpp + z_bpp
  loss = beta * bpp + mse_255
  metrics = {'loss': loss, 'bpp': bpp, 'y_bpp': y_bpp, 'z_bpp': z_bpp,
             'mse_255': mse_255, 'psnr_db': psnr_db(mse_255)}
  return loss, metrics


def rate_distortion_model_rate(
    trainable: dict, theta_global: dict, frames: jax.Array, rng: jax.Array, *,
    model: MeanScaleHyperprior, beta: float, prior, video_pixels: int,
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
  from iac_jax import update_coding  # pylint: disable=g-import-not-at-top
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
