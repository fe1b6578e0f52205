"""Generalized divisive normalization (Balle, Laparra, Simoncelli, ICLR 2016).

GDN:          y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)
inverse GDN:  y_i = x_i * sqrt(beta_i + sum_j gamma_ij x_j^2)

`beta` and `gamma` are stored reparameterized, as in tensorflow/compression's
`GDNParameter` and CompressAI's `NonNegativeParametrizer`: the stored value `p` maps
to `max(p, sqrt(min + pedestal))^2 - pedestal` with `pedestal = (2^-18)^2`, which
keeps `beta >= beta_min > 0` and `gamma >= 0` and behaves well near zero. The lower
bound passes gradients that push a clamped parameter back up (Balle 2018). Stored
values are CompressAI's own (its `beta` and `gamma` tensors), gamma as [C_out, C_in].
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

_REPARAM_OFFSET = 2.0**-18
_PEDESTAL = _REPARAM_OFFSET**2


@jax.custom_vjp
def lower_bound(x: jax.Array, bound: float) -> jax.Array:
  """`max(x, bound)`; its gradient also passes below the bound when it would raise x."""
  return jnp.maximum(x, bound)


def _lower_bound_fwd(x, bound):
  return jnp.maximum(x, bound), (x, bound)


def _lower_bound_bwd(residuals, g):
  x, bound = residuals
  # Gradient descent moves x by -g: a negative g lifts a clamped x back up.
  passes = (x >= bound) | (g < 0)
  return jnp.where(passes, g, 0.0), jnp.zeros_like(bound)


lower_bound.defvjp(_lower_bound_fwd, _lower_bound_bwd)


def _nonnegative(p: jax.Array, minimum: float) -> jax.Array:
  bound = jnp.sqrt(jnp.asarray(minimum + _PEDESTAL, p.dtype))
  return lower_bound(p, bound)**2 - _PEDESTAL


def nonnegative_value(p, minimum: float = 0.0, xp=jnp):
  """The value (beta or gamma) a stored parameter `p` stands for, in any namespace."""
  bound = (minimum + _PEDESTAL)**0.5
  return xp.maximum(p, bound)**2 - _PEDESTAL


def nonnegative_param(value, xp=jnp):
  """The stored parameter of a value (beta or gamma): inverse of `nonnegative_value`."""
  return xp.sqrt(xp.maximum(value + _PEDESTAL, _PEDESTAL))


def _nonnegative_init(value: jax.Array) -> jax.Array:
  return jnp.sqrt(jnp.maximum(value + _PEDESTAL, _PEDESTAL))


class GDN(nn.Module):
  """GDN, or inverse GDN with `inverse=True`, over the last (channel) axis.

  Attributes:
    inverse: compute `x * sqrt(...)` (synthesis side) instead of `x / sqrt(...)`.
    beta_min: lower bound of beta, keeps the denominator away from zero.
    gamma_init: initial value of the diagonal of gamma.
  """

  inverse: bool = False
  beta_min: float = 1e-6
  gamma_init: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = x.shape[-1]
    beta_p = self.param(
        'beta', lambda _, c: _nonnegative_init(jnp.ones((c,))), channels)
    gamma_p = self.param(
        'gamma',
        lambda _, c: _nonnegative_init(self.gamma_init * jnp.eye(c)), channels)
    beta = _nonnegative(beta_p, self.beta_min)
    gamma = _nonnegative(gamma_p, 0.0)
    # Channel mixing as one 2-D matmul: norm_i = beta_i + sum_j gamma_ij x_j^2. (XLA's
    # CPU backend runs this ~1.5x faster than the same contraction as an einsum over
    # [B, H, W, C]; benchmarks/README.md.)
    norm = jnp.dot((x * x).reshape(-1, channels), gamma.T).reshape(x.shape) + beta
    return x * jnp.sqrt(norm) if self.inverse else x * jax.lax.rsqrt(norm)
