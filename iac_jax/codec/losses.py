"""Rate-distortion objective of the global model: `L = beta * R + D`.

R is in bits per pixel (bits of `y` and `z` over the pixel count), D is the mean
squared error on the 255 scale, so `beta = 1 / lambda` of CompressAI's
`lambda * 255^2 * MSE + bpp`. Larger beta, lower rate. Instance adaptation adds the
model rate to it: `iac_jax.adaptation.objective`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from iac_jax.codec.hyperprior import MeanScaleHyperprior


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
