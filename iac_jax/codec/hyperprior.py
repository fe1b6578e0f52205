"""The mean-scale hyperprior as one Flax module (Minnen, Balle, Toderici 2018).

Parameters live in the pytree `init` returns, under `g_a`, `h_a` (encoder side,
never sent) and `g_s`, `h_s`, `z_prior` (decoder side). Each stage is a method,
called as `model.apply({'params': p}, x, method='analysis')`, so the codec can run
the decoder's exact computation on the encoder side.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from iac_jax.codec import quantization
from iac_jax.codec.configs import ModelConfig
from iac_jax.codec.entropy_models import FactorizedDensity, factorized, gaussian
from iac_jax.codec.transforms import (
  AnalysisTransform,
  HyperAnalysisTransform,
  HyperSynthesisTransform,
  SynthesisTransform,
)

# Parameter collections the receiver needs; everything else stays at the encoder.
DECODER_SIDE = ('g_s', 'h_s', 'z_prior')
ENCODER_SIDE = ('g_a', 'h_a')


class MeanScaleHyperprior(nn.Module):
  """Analysis, synthesis and entropy models of one hyperprior codec."""

  config: ModelConfig

  def setup(self):
    c = self.config
    self.g_a = AnalysisTransform(c.num_filters, c.num_latents)
    self.h_a = HyperAnalysisTransform(c.num_filters)
    self.h_s = HyperSynthesisTransform(c.num_latents)
    self.g_s = SynthesisTransform(c.num_filters)
    self.z_prior = FactorizedDensity(c.num_hyper_latents, c.factorized_filters)

  def __call__(self, x: jax.Array, rng: jax.Array | None = None,
           training: bool = True) -> dict[str, jax.Array]:
    """Runs the codec on float32[B, H, W, 3] in [0, 1] (H, W multiples of 64).

    training=True: rates of `y + u` and `z + u` (u uniform noise, needs `rng`),
    reconstruction from straight-through rounded latents, so that training sees
    the integers the decoder will see. training=False: rates and reconstruction
    of the rounded latents, the rate of `y` under the coder's table scales.
    `z` is rounded around the medians of its density, `y` around `mu`.

    Returns x_hat float32[B, H, W, 3], y_bits and z_bits float32[B] (bits per image).
    """
    y = self.g_a(x)
    z = self.h_a(y)
    z_hat = self.z_prior.quantize(z)
    mu, sigma = self.hyper_synthesis(z_hat)
    y_hat = quantization.quantize(y, mu)
    rng_y, rng_z = jax.random.split(rng) if training else (None, None)
    z_bits = self.z_prior.bits(z, rng_z)
    y_bits = gaussian.bits(y, mu, sigma, rng_y)
    total = lambda b: jnp.sum(b, axis=(1, 2, 3))
    return {'x_hat': self.g_s(y_hat), 'y_bits': total(y_bits), 'z_bits': total(z_bits)}

  def analysis(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """x float32[B, H, W, 3] -> (y [B, H/16, W/16, M], z [B, H/64, W/64, N])."""
    y = self.g_a(x)
    return y, self.h_a(y)

  def quantize_z(self, z: jax.Array) -> jax.Array:
    """z_hat = round(z - m) + m (m: the density's medians), straight-through."""
    return self.z_prior.quantize(z)

  def z_bits(self, z: jax.Array, rng: jax.Array | None = None) -> jax.Array:
    """Bits of each element of z: noisy with `rng` (training), else as coded."""
    return self.z_prior.bits(z, rng)

  def hyper_synthesis(self, z_hat: jax.Array) -> tuple[jax.Array, jax.Array]:
    """z_hat -> (mu, sigma), sigma lower-bounded by the smallest table scale."""
    mu, raw_scale = self.h_s(z_hat)
    return mu, gaussian.lower_bound_scale(raw_scale)

  def synthesis(self, y_hat: jax.Array) -> jax.Array:
    """y_hat -> reconstruction float32[B, 16h, 16w, 3], not clipped."""
    return self.g_s(y_hat)


def init_params(config: ModelConfig, rng: jax.Array) -> dict:
  """Fresh parameters of the hyperprior of `config`, z medians those of its density."""
  model = MeanScaleHyperprior(config)
  x = jnp.zeros((1, 64, 64, 3), jnp.float32)
  params = model.init(rng, x, rng, training=True)['params']
  return dict(params, z_prior=factorized.with_fresh_medians(params['z_prior']))
