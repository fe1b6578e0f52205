"""Mean-scale Gaussian conditional for `y` (Minnen et al. 2018), indexed by scale.

`y` is coded as the integer `round(y - mu)` under a zero-mean Gaussian, convolved
with U(-1/2, 1/2), whose scale is looked up in a fixed log-spaced table:
`P[k] = Phi((k + 1/2) / s) - Phi((k - 1/2) / s)`. The table index of each element is
the nearest table scale in the log domain, clipped to the table.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr
from scipy.special import ndtr as np_ndtr

from iac_jax.codec.entropy_models.tables import CdfTables, tables_from_pmfs
from iac_jax.codec.layers.gdn import lower_bound

SCALE_MIN = 0.11
SCALE_MAX = 256.0
NUM_SCALES = 64
_LIKELIHOOD_BOUND = 1e-9
# Half-width of a table in standard deviations; beyond it values use escape codes.
_TAIL_SIGMAS = 5.0


def scale_table() -> np.ndarray:
  """float64[NUM_SCALES], log-spaced from SCALE_MIN to SCALE_MAX."""
  return np.exp(np.linspace(np.log(SCALE_MIN), np.log(SCALE_MAX), NUM_SCALES))


_LOG_STEP = float(np.log(SCALE_MAX / SCALE_MIN) / (NUM_SCALES - 1))


def lower_bound_scale(raw_scale: jax.Array) -> jax.Array:
  """sigma = max(raw, SCALE_MIN), with the gradient passed when it raises sigma."""
  return lower_bound(raw_scale, jnp.asarray(SCALE_MIN, raw_scale.dtype))


def scale_indexes(sigma, xp=np):
  """Index of the nearest table scale (log domain) for each sigma, int32."""
  sigma = xp.maximum(xp.asarray(sigma, xp.float32), SCALE_MIN)
  idx = xp.round((xp.log(sigma) - np.float32(np.log(SCALE_MIN))) / np.float32(_LOG_STEP))
  return xp.clip(idx, 0, NUM_SCALES - 1).astype(xp.int32)


def likelihood(v: jax.Array, sigma: jax.Array) -> jax.Array:
  """P of the unit bin around `v = y - mu` under N(0, sigma^2); v noisy or integer."""
  v = jnp.abs(v)
  upper = ndtr((0.5 - v) / sigma)
  lower = ndtr((-0.5 - v) / sigma)
  return jnp.maximum(upper - lower, _LIKELIHOOD_BOUND)


def bits(y: jax.Array, mu: jax.Array, sigma: jax.Array,
         rng: jax.Array | None = None) -> jax.Array:
  """Bits of each element of `y` given (mu, sigma), same shape as `y`.

  Training (`rng` given): `y - mu + u`, u ~ U(-1/2, 1/2), under the continuous sigma.
  Evaluation (`rng=None`): the integer `round(y - mu)` under the table scale the coder
  uses, i.e. the ideal code length of what is sent.
  """
  if rng is not None:
    v = y - mu + jax.random.uniform(rng, y.shape, y.dtype, -0.5, 0.5)
    return -jnp.log2(likelihood(v, sigma))
  v = jnp.round(y - mu)
  return -jnp.log2(likelihood(v, quantized_scale(jax.lax.stop_gradient(sigma))))


def quantized_scale(sigma: jax.Array) -> jax.Array:
  """The table scale the coder uses for each sigma."""
  table = jnp.asarray(scale_table(), sigma.dtype)
  return table[scale_indexes(sigma, jnp)]


def gaussian_tables(precision: int = 16) -> CdfTables:
  """One coding table per table scale; fixed, independent of any parameters."""
  pmfs, offsets = [], []
  for s in scale_table():
    half = int(np.ceil(_TAIL_SIGMAS * s))
    k = np.arange(-half, half + 1, dtype=np.float64)
    pmfs.append(np_ndtr((k + 0.5) / s) - np_ndtr((k - 0.5) / s))
    offsets.append(-half)
  return tables_from_pmfs(pmfs, offsets, precision)
