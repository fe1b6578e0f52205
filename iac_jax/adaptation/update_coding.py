"""Quantization, rate and range coding of the decoder-side parameter update.

The receiver holds `theta_global`; the sender transmits the integers
`k = round(delta / t)` of `delta_hat = t k`, over all sent parameters (the decoder
side: `g_s`, `h_s`, `z_prior`) in sorted path order, range-coded under the
discretized spike-and-slab prior. Both sides rebuild `theta_global + t k` with the
same float32 NumPy arithmetic, so the rebuilt parameters agree bit for bit.

Update section payload: t, sigma_slab, alpha (float64 each), table radius (u32),
then the range-coded integers.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from iac_jax.adaptation.model_prior import ModelPrior
from iac_jax.codec import quantization, range_coding
from iac_jax.codec.bitstream import BitstreamError
from iac_jax.codec.entropy_models.tables import code_lengths, escape_symbol_bits
from iac_jax.codec.hyperprior import DECODER_SIDE

_PRIOR = struct.Struct('>dddI')
_MAX_INT = 1 << 30


def decoder_side(params: dict) -> dict:
  """The sent subset of a parameter pytree (top-level keys in DECODER_SIDE)."""
  return {k: params[k] for k in DECODER_SIDE}


def sorted_leaves(tree: Any) -> list[tuple[str, Any]]:
  """(path, leaf) pairs in sorted path order: the order of the coded update."""
  pairs = jax.tree_util.tree_flatten_with_path(tree)[0]
  return sorted(((jax.tree_util.keystr(p), leaf) for p, leaf in pairs), key=lambda x: x[0])


def num_sent_params(params: dict) -> int:
  return sum(int(np.size(leaf)) for _, leaf in sorted_leaves(decoder_side(params)))


def quantize_update(delta: Any, t: float) -> Any:
  """delta_hat = t * round(delta / t), with a straight-through gradient."""
  return jax.tree.map(lambda d: t * quantization.round_st(d / t), delta)


def update_integers(delta: Any, t: float) -> Any:
  """The integers k = round(delta / t) that are sent, as int64 NumPy leaves."""
  return jax.tree.map(lambda d: np.round(np.asarray(d, np.float64) / t).astype(np.int64),
                      delta)


def _table_code_lengths(prior: ModelPrior) -> np.ndarray:
  return code_lengths(prior.tables(), 0)


def model_rate_bits(delta: Any, prior: ModelPrior, rng: jax.Array | None = None) -> jax.Array:
  """Model rate M in bits of sending round(delta / t), differentiable in delta.

  Forward value: the exact code length of the integers under the coder's table
  (escapes approximated). Gradient: from the discretized prior evaluated at
  `delta / t + u`, u ~ U(-1/2, 1/2) (or at `delta / t` without `rng`). An update
  that still rounds to zero has no gradient through the rounded value, because the
  prior is symmetric; the surrogate's gradient pulls it back into the spike.
  """
  lengths = jnp.asarray(_table_code_lengths(prior), jnp.float32)
  escape_symbol = escape_symbol_bits(prior.tables(), 0)
  radius = prior.table_radius
  # One flat vector keeps the traced graph small (one prior evaluation, not one per leaf).
  scaled = jnp.concatenate([jnp.ravel(d) for d in jax.tree.leaves(delta)]) / prior.t
  k = jax.lax.stop_gradient(jnp.round(scaled))
  idx = jnp.clip(k + radius, 0, 2 * radius).astype(jnp.int32)
  escape = _escape_bits(jnp.abs(k) - radius, escape_symbol, jnp)
  exact = jnp.sum(jnp.where(jnp.abs(k) <= radius, lengths[idx], escape))
  if rng is not None:
    scaled = scaled + jax.random.uniform(rng, scaled.shape, scaled.dtype, -0.5, 0.5)
  surrogate = jnp.sum(prior.bits(scaled))
  return surrogate + jax.lax.stop_gradient(exact - surrogate)


def _escape_bits(overflow, escape_symbol: float, xp):
  """Bits of a value `overflow` past the table edge: escape symbol + Elias gamma."""
  return escape_symbol + 2 * xp.floor(xp.log2(xp.maximum(overflow, 1.0))) + 1


def bits_per_tensor(ints: Any, prior: ModelPrior) -> list[dict]:
  """Code length of each sent tensor's integers, in coding (sorted path) order.

  One dict per tensor: path, params, nonzero, bits (escapes approximated as in
  `model_rate_bits`) and static_bits (what the tensor costs when all zero). The
  bits add up to the update section's payload to within the coder's few bytes.
  """
  lengths = _table_code_lengths(prior)
  escape_symbol = escape_symbol_bits(prior.tables(), 0)
  radius = prior.table_radius
  out = []
  for path, leaf in sorted_leaves(ints):
    k = np.abs(np.ravel(np.asarray(leaf, np.int64)))
    inside = k <= radius
    bits = (lengths[k[inside] + radius].sum() +
            _escape_bits(k[~inside] - radius, escape_symbol, np).sum())
    out.append({'path': path, 'params': int(k.size), 'nonzero': int(np.count_nonzero(k)),
                'bits': float(bits), 'static_bits': float(k.size * lengths[radius])})
  return out


def static_bits(params: dict, prior: ModelPrior) -> float:
  """Coded bits of an all-zero update of the sent parameters (the static cost)."""
  return float(num_sent_params(params) * _table_code_lengths(prior)[prior.table_radius])


def encode_update(ints: Any, prior: ModelPrior) -> bytes:
  """Update section payload for the integer tree `ints` (decoder-side structure)."""
  flat = [np.ravel(np.asarray(leaf, np.int64)) for _, leaf in sorted_leaves(ints)]
  values = np.concatenate(flat) if flat else np.zeros(0, np.int64)
  if values.size and np.abs(values).max() >= _MAX_INT:
    raise ValueError('parameter update too large to code (|k| >= 2^30)')
  header = _PRIOR.pack(prior.t, prior.sigma_slab, prior.alpha, prior.table_radius)
  coded = range_coding.encode(values, np.zeros(values.shape, np.int32), prior.tables())
  return header + coded


def read_prior(payload: bytes) -> ModelPrior:
  """The model prior at the start of an update section; BitstreamError if implausible."""
  if len(payload) < _PRIOR.size:
    raise BitstreamError('update section too short')
  t, sigma_slab, alpha, radius = _PRIOR.unpack_from(payload)
  if not all(math.isfinite(v) for v in (t, sigma_slab, alpha)):
    raise BitstreamError('update section has non-finite prior parameters')
  if not (1e-8 <= t <= 1.0 and 1e-8 <= sigma_slab <= 100.0 and 0 <= alpha <= 1e9
          and 1 <= radius <= 30000):
    raise BitstreamError('update section has implausible prior parameters')
  return ModelPrior(t=t, sigma_slab=sigma_slab, alpha=alpha, table_radius=radius)


def decode_update(payload: bytes, template: Any) -> tuple[Any, ModelPrior]:
  """Inverse of `encode_update`; `template` gives the decoder-side tree and shapes."""
  prior = read_prior(payload)
  pairs = sorted_leaves(template)
  total = sum(int(np.size(leaf)) for _, leaf in pairs)
  try:
    values = range_coding.decode(payload[_PRIOR.size:], np.zeros(total, np.int32),
                                 prior.tables())
  except range_coding.RangeCodingError as e:
    raise BitstreamError(f'update section: {e}') from None
  out, pos = {}, 0
  for path, leaf in pairs:
    n = int(np.size(leaf))
    out[path] = values[pos:pos + n].reshape(np.shape(leaf))
    pos += n
  leaves_with_paths = jax.tree_util.tree_flatten_with_path(template)
  ordered = [out[jax.tree_util.keystr(p)] for p, _ in leaves_with_paths[0]]
  return jax.tree_util.tree_unflatten(leaves_with_paths[1], ordered), prior


def apply_update(theta_global: Any, ints: Any, t: float) -> Any:
  """theta_global + t k in float32 NumPy: the one computation both sides run."""
  step = np.float32(t)
  return jax.tree.map(
      lambda g, k: (np.asarray(g, np.float32) + step * np.asarray(k).astype(np.float32)
                    ).astype(np.float32), theta_global, ints)
