"""Spike-and-slab prior over parameter updates (van Rozendaal et al. 2021, Sec. 3).

    p(delta) = (alpha * N(delta; 0, sigma_spike^2) + N(delta; 0, sigma_slab^2)) / (1 + alpha)

with sigma_spike = t / 6, so that an update that rounds to zero on the grid of width
`t` is nearly free. Updates are sent as integers k of `delta_hat = k t`, with

    P[k] = CDF((k + 1/2) t) - CDF((k - 1/2) t).

The model rate `M = sum -log2 P[k]` over all sent parameters; an all-zero update
costs the *static* `num_params * -log2 P[0]` bits.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr
from scipy.special import ndtr as np_ndtr

from iac_jax.codec.entropy_models.tables import CdfTables, tables_from_pmfs

_PROB_FLOOR = 1e-12


@dataclasses.dataclass(frozen=True)
class ModelPrior:
  """Hyperparameters of the spike-and-slab prior (defaults from METHOD.md, *start*).

  Attributes:
    t: quantization bin width of the update.
    sigma_slab: standard deviation of the wide slab.
    alpha: weight of the spike relative to the slab.
    table_radius: integers |k| <= table_radius are in the coding table; larger
      ones use escape codes.
  """

  t: float = 0.005
  sigma_slab: float = 0.05
  alpha: float = 1000.0
  table_radius: int = 40

  def __post_init__(self):
    if not (self.t > 0 and self.sigma_slab > 0 and self.alpha >= 0):
      raise ValueError(f'invalid model prior {self}')
    if not 1 <= self.table_radius <= 30000:
      raise ValueError('table_radius must be in [1, 30000]')

  @property
  def sigma_spike(self) -> float:
    return self.t / 6.0

  def cdf(self, x, xp=jnp):
    """Mixture CDF at x (any array namespace with ndtr: jnp or np)."""
    phi = ndtr if xp is jnp else np_ndtr
    return (self.alpha * phi(x / self.sigma_spike) + phi(x / self.sigma_slab)) / (
        1.0 + self.alpha)

  def bin_probability(self, k, xp=jnp):
    """P[delta_hat = k t] for integer (or, for the rate surrogate, real) k.

    Computed on the tail side of zero for accuracy: for k > 0 as
    `(1 - CDF((k-1/2)t)) - (1 - CDF((k+1/2)t))`, using the symmetry of the prior.
    """
    k = xp.abs(k)
    upper = self.cdf(-(k - 0.5) * self.t, xp)
    lower = self.cdf(-(k + 0.5) * self.t, xp)
    return xp.maximum(upper - lower, _PROB_FLOOR)

  def bits(self, k) -> jax.Array:
    """-log2 P[k], elementwise."""
    return -jnp.log2(self.bin_probability(k))

  def static_bits(self, num_params: int) -> float:
    """Bits of an all-zero update of `num_params` parameters."""
    return float(num_params * -np.log2(self.bin_probability(np.float64(0), np)))

  def tables(self) -> CdfTables:
    """One 16-bit integer CDF table for k in [-table_radius, table_radius] (+ escape)."""
    return _tables(self)


@functools.lru_cache(maxsize=16)
def _tables(prior: ModelPrior) -> CdfTables:
  k = np.arange(-prior.table_radius, prior.table_radius + 1, dtype=np.float64)
  return tables_from_pmfs([prior.bin_probability(k, np)], [-prior.table_radius], 16)
