"""Non-parametric factorized density for the hyper-latent `z` (Balle et al. 2018, App. 6.1).

Per channel, the CDF is a monotone MLP: `c(x) = sigmoid(f_K(...f_1(x)))` with
`f_k(x) = g_k(softplus(H_k) x + b_k)`, `g_k(x) = x + tanh(a_k) * tanh(x)` for k < K.
Softplus weights and factors in (-1, 1) keep every layer increasing in x. The
probability of an integer bin is `c(k + 1/2) - c(k - 1/2)`; with uniform noise the
same formula is the density of `z + u` (Balle et al. 2018).

`z` is quantized around the per-channel median `m` of the density, as CompressAI's
`EntropyBottleneck` does: `z_hat = round(z - m) + m`, and the integer `round(z - m)`
is what is coded. The medians are a parameter (`medians`, float32[C]) that no loss
moves: training sets them to the density's median after each step
(`with_fresh_medians`), and a checkpoint imported from CompressAI brings its own.

The CDF is written once, for any array namespace, so that the coding tables are
evaluated in float64 NumPy (deterministic, no JAX) from the same formula that
training differentiates in JAX.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import expit

from iac_jax.codec import quantization
from iac_jax.codec.entropy_models.tables import CdfTables, tables_from_pmfs

_LIKELIHOOD_BOUND = 1e-9
# Coding support: integers where the CDF has more than this mass outside.
_TAIL_MASS = 1e-7
_MAX_SUPPORT = 512
# The median search brackets [-_MEDIAN_RANGE, _MEDIAN_RANGE] and halves it this often.
_MEDIAN_RANGE = 1024.0
_MEDIAN_ITERATIONS = 40


def _softplus(x, xp):
  return xp.logaddexp(x, 0.0)


def _centered_uniform(key, shape, dtype=jnp.float32):
  return jax.random.uniform(key, shape, dtype, -0.5, 0.5)


def cdf_logits(params: Mapping[str, Any], x, xp=jnp):
  """Logits of the CDF. x: [C, n] (one row per channel) -> [C, n]."""
  num_layers = sum(1 for k in params if k.startswith('matrix'))
  h = x[:, None, :]  # [C, 1, n]
  for i in range(num_layers):
    h = xp.matmul(_softplus(params[f'matrix{i}'], xp), h) + params[f'bias{i}']
    if i < num_layers - 1:
      h = h + xp.tanh(params[f'factor{i}']) * xp.tanh(h)
  return h[:, 0, :]


class FactorizedDensity(nn.Module):
  """Per-channel learned density of `z`. Inputs are float[..., C], channels last."""

  channels: int
  filters: tuple[int, ...] = (3, 3, 3, 3)
  init_scale: float = 10.0

  def setup(self):
    widths = (1,) + tuple(self.filters) + (1,)
    scale = self.init_scale**(1.0 / (len(self.filters) + 1))
    params = {}
    for i in range(len(self.filters) + 1):
      init = float(np.log(np.expm1(1.0 / scale / widths[i + 1])))
      shape = (self.channels, widths[i + 1], widths[i])
      params[f'matrix{i}'] = self.param(
          f'matrix{i}', nn.initializers.constant(init), shape)
      params[f'bias{i}'] = self.param(
          f'bias{i}', _centered_uniform, (self.channels, widths[i + 1], 1))
      if i < len(self.filters):
        params[f'factor{i}'] = self.param(
            f'factor{i}', nn.initializers.zeros, (self.channels, widths[i + 1], 1))
    self._params = params
    self.medians = self.param('medians', nn.initializers.zeros, (self.channels,))

  def __call__(self, z: jax.Array) -> jax.Array:
    """Likelihood of the bins around `z` (noisy or integer), float[..., C]."""
    return self.likelihood(z)

  def quantize(self, z: jax.Array) -> jax.Array:
    """`round(z - m) + m` per channel, straight-through; no gradient reaches `m`."""
    return quantization.quantize(z, jax.lax.stop_gradient(self.medians))

  def bits(self, z: jax.Array, rng: jax.Array | None = None) -> jax.Array:
    """Bits of each element of `z`: of `z + u` when `rng` is given (training), of
    `round(z - m) + m` otherwise (evaluation: what is coded)."""
    if rng is not None:
      z = z + jax.random.uniform(rng, z.shape, z.dtype, -0.5, 0.5)
    else:
      m = jax.lax.stop_gradient(self.medians)
      z = jnp.round(z - m) + m
    return -jnp.log2(self.likelihood(z))

  def likelihood(self, z: jax.Array) -> jax.Array:
    shape = z.shape
    v = jnp.reshape(z, (-1, self.channels)).T  # [C, n]
    lower = cdf_logits(self._params, v - 0.5)
    upper = cdf_logits(self._params, v + 0.5)
    # Evaluate in the tail where the sigmoid is not saturated (Balle et al. 2018).
    sign = -jnp.sign(lower + upper)
    lik = jnp.abs(jax.nn.sigmoid(sign * upper) - jax.nn.sigmoid(sign * lower))
    lik = jnp.maximum(lik, _LIKELIHOOD_BOUND)
    return jnp.reshape(lik.T, shape)


def density_medians(params: Mapping[str, Any], xp=jnp):
  """The median of each channel's density, float[C]: where the CDF's logit is 0.

  Bisection (the CDF is increasing), in any array namespace; traceable under jit.
  """
  channels = params['matrix0'].shape[0]
  dtype = params['matrix0'].dtype
  lo = xp.full((channels, 1), -_MEDIAN_RANGE, dtype)
  hi = xp.full((channels, 1), _MEDIAN_RANGE, dtype)

  def halve(bounds):
    lo, hi = bounds
    mid = 0.5 * (lo + hi)
    above = cdf_logits(params, mid, xp) > 0
    return xp.where(above, lo, mid), xp.where(above, mid, hi)

  if xp is jnp:
    lo, hi = jax.lax.fori_loop(0, _MEDIAN_ITERATIONS, lambda _, b: halve(b), (lo, hi))
  else:
    for _ in range(_MEDIAN_ITERATIONS):
      lo, hi = halve((lo, hi))
  return (0.5 * (lo + hi))[:, 0]


def with_fresh_medians(params: Mapping[str, Any]) -> dict:
  """The density's parameters with `medians` set to its current medians (float32)."""
  params = dict(params)
  params['medians'] = density_medians(params).astype(params['medians'].dtype)
  return params


def factorized_tables(params: Mapping[str, Any], precision: int = 16) -> CdfTables:
  """Integer CDF tables, one per channel, from the density's parameters.

  Evaluated in float64 NumPy, so encoder and decoder derive identical tables from
  identical parameters. Table c codes the integer `round(z[..., c] - medians[c])`.
  """
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  channels = p['matrix0'].shape[0]
  grid = np.arange(-_MAX_SUPPORT, _MAX_SUPPORT + 1, dtype=np.float64)
  edges = np.concatenate([grid - 0.5, grid[-1:] + 0.5])
  logits = cdf_logits(p, edges[None, :] + p['medians'][:, None], np)
  cdf = expit(logits)  # [C, 2*MAX+2]
  pmfs, offsets = [], []
  for c in range(channels):
    inside = np.nonzero((cdf[c, 1:] > _TAIL_MASS) & (cdf[c, :-1] < 1 - _TAIL_MASS))[0]
    lo, hi = (inside[0], inside[-1]) if inside.size else (_MAX_SUPPORT, _MAX_SUPPORT)
    pmfs.append(np.diff(cdf[c, lo:hi + 2]))
    offsets.append(int(grid[lo]))
  return tables_from_pmfs(pmfs, offsets, precision)
