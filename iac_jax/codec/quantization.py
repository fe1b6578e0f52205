"""Quantization of latents: uniform noise, straight-through rounding, rounding.

`quantize(x, offset)` rounds `x - offset` to integers and adds the offset back,
as the mean-scale hyperprior does with `offset = mu` (Minnen et al. 2018).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def add_uniform_noise(x: jax.Array, rng: jax.Array) -> jax.Array:
  """`x + u`, u ~ U(-1/2, 1/2): the training proxy for rounding (Balle et al. 2017)."""
  return x + jax.random.uniform(rng, x.shape, x.dtype, -0.5, 0.5)


def round_st(x: jax.Array) -> jax.Array:
  """Rounds `x` in the forward pass; the gradient is the identity."""
  return x + jax.lax.stop_gradient(jnp.round(x) - x)


def quantize(x: jax.Array, offset: jax.Array | float = 0.0) -> jax.Array:
  """`round(x - offset) + offset`, with a straight-through gradient."""
  return round_st(x - offset) + offset
