"""Weights on a per-output-channel uniform grid: smaller model files, read back exactly.

Shipped weights live in git, where float16 values barely compress (7-9%) and one
snapshot cannot be delta-compressed against the last, so each snapshot of four
`small` models cost 13.1 MB. `grid_precision` puts every large leaf on a uniform grid
per output channel (the last axis): the step is max|w| / (2^(bits-1) - 1) rounded to a
float16 value, and each weight becomes an integer multiple of it. The model *is* those
values (fingerprint included); the file stores the integers and the steps
(`encode_leaf`), which `decode_leaf` multiplies back bit for bit: the integers have
at most 10 bits and the steps 11 significant bits, so every product is exact in
float32. Integers of more than 8 bits are stored as a signed high byte and an unsigned
low byte, in two separate arrays, so that git's zlib finds the (nearly constant) high
bytes; 9 bits cost about 2.0 MB a `small` model in git against 3.27 MB as float16.
What a grid costs in RD is measured in `benchmarks/weight_precision.py`.

`encode_leaf` finds the grid from the values alone, so a model file never records
which precision was asked for, and whatever is not exactly on a grid is stored as
float16 when that is exact, else float32: saving is always lossless.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

# What shipped weights use: within +-0.015 dB of float16 at every rate on the held-out
# photos (8 bits lost up to 0.06 dB; NOTES.md, "Shipping weights on a 9-bit grid").
SHIPPED_BITS = 9
# Leaves with fewer values than this stay float16 (biases, GDN's beta, the z density).
MIN_GRID_SIZE = 4096
_BITS = range(2, 11)  # k * step stays exact in float32 up to here (10 + 11 bits < 24)

# The keys of a stored grid leaf; no parameter of any model is named so.
GRID, GRID_LOW, STEP = '__grid__', '__grid_low__', '__step__'


def _steps(peak: np.ndarray, bits: int) -> np.ndarray | None:
  """The float16-valued step of each channel, or None if one is not a normal float16."""
  with np.errstate(over='ignore'):
    step = (peak / (2 ** (bits - 1) - 1)).astype(np.float16)
  step = np.where(peak > 0, step, np.float16(1))
  if not np.all(np.isfinite(step)) or np.any(np.abs(step) < np.finfo(np.float16).tiny):
    return None
  return step.astype(np.float32)


def on_grid(a: np.ndarray, bits: int) -> np.ndarray:
  """`a` (float32, at least 2-D) rounded onto its per-output-channel grid of `bits` bits.

  Returns `a` rounded to float16 instead when a channel's step would not be a normal
  float16 value (weights of 1e-5 and below).
  """
  if bits not in _BITS:
    raise ValueError(f'grids of {bits} bits are not supported ({_BITS.start}-{_BITS.stop - 1})')
  a = np.asarray(a, np.float32)
  flat = a.reshape(-1, a.shape[-1])
  kmax = 2 ** (bits - 1) - 1
  step = _steps(np.abs(flat).max(axis=0), bits)
  if step is None:
    return a.astype(np.float16).astype(np.float32)
  k = np.clip(np.round(flat / step), -kmax, kmax) + 0.0  # + 0.0: no negative zeros
  return (k * step).reshape(a.shape)


def _half(a: Any) -> np.ndarray:
  """`a` rounded to the nearest float16 values, kept as float32."""
  h = np.asarray(a, np.float32).astype(np.float16)
  if not np.all(np.isfinite(h)):
    raise ValueError('a parameter is beyond float16 range')
  return h.astype(np.float32)


def half_precision(params: Any) -> Any:
  """float32 parameters rounded to the nearest float16 values (kept as float32): half
  the file size, losslessly stored; what exported training branches use."""
  return jax.tree.map(_half, params)


def grid_precision(params: Any, bits: int = SHIPPED_BITS,
                   min_size: int = MIN_GRID_SIZE) -> Any:
  """Every leaf of `min_size` values or more (and at least 2-D) on its grid of `bits`
  bits, the others rounded to float16; all kept as float32 arrays."""
  def round_leaf(a):
    h = _half(a)  # also refuses values beyond float16's range
    if h.ndim >= 2 and h.size >= min_size:
      return on_grid(np.asarray(a, np.float32), bits)
    return h
  return jax.tree.map(round_leaf, params)


def _same_bits(x: np.ndarray, y: np.ndarray) -> bool:
  """Equal float32 arrays, bit for bit (0.0 and -0.0 differ: the fingerprint sees it)."""
  return np.array_equal(np.asarray(x, np.float32).view(np.int32),
                        np.asarray(y, np.float32).view(np.int32))


def _find_grid(a: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
  """(integers, steps) with integers * steps == a exactly, on the coarsest grid that
  holds `a`; None if no grid of `_BITS` does."""
  if a.ndim < 2 or a.size == 0:
    return None
  flat = a.reshape(-1, a.shape[-1])
  peak = np.abs(flat).max(axis=0)
  for bits in _BITS:
    step = _steps(peak, bits)
    if step is None:
      continue
    head = flat[:4]  # most candidate grids fail on the first rows already
    if not _same_bits((np.round(head / step) + 0.0) * step, head):
      continue
    k = np.round(flat / step) + 0.0  # as decode_leaf gives it: no negative zeros
    if np.abs(k).max() <= 2 ** (bits - 1) - 1 and _same_bits(k * step, flat):
      return k.astype(np.int16).reshape(a.shape), step
  return None


def encode_leaf(a: np.ndarray) -> np.ndarray | dict:
  """What a model file stores for the float32 leaf `a`, losslessly: a grid (a dict of
  integer bytes and float16 steps), else float16 if that holds `a`, else `a`."""
  a = np.asarray(a, np.float32)
  grid = _find_grid(a)
  if grid is not None:
    k, step = grid
    out = {STEP: step.astype(np.float16)}
    if np.abs(k).max() <= 127:
      out[GRID] = k.astype(np.int8)
    else:
      out[GRID] = (k >> 8).astype(np.int8)        # floor division: k = 256 * hi + lo
      out[GRID_LOW] = (k & 0xFF).astype(np.uint8)
    return out
  h = a.astype(np.float16)
  return h if _same_bits(h, a) else a


def decode_leaf(stored: Any) -> Any:
  """The float32 values of a leaf `encode_leaf` stored; other objects pass through.

  Raises ValueError on a malformed grid (a corrupt or foreign file)."""
  if not isinstance(stored, dict) or GRID not in stored:
    return stored
  hi, lo, step = stored.get(GRID), stored.get(GRID_LOW), stored.get(STEP)
  if set(stored) - {GRID, GRID_LOW, STEP} or not all(
      isinstance(x, np.ndarray) for x in (hi, step)):
    raise ValueError('malformed grid leaf')
  if (hi.dtype != np.int8 or hi.ndim < 2 or step.dtype != np.float16
      or step.shape != hi.shape[-1:] or not np.all(np.isfinite(step))):
    raise ValueError('malformed grid leaf')
  k = hi.astype(np.float32)
  if lo is not None:
    if not isinstance(lo, np.ndarray) or lo.dtype != np.uint8 or lo.shape != hi.shape:
      raise ValueError('malformed grid leaf')
    k = k * 256 + lo.astype(np.float32)
  return k * step.astype(np.float32)


def decode_tree(state: Any) -> Any:
  """`state` (a restored state dict) with every stored grid decoded."""
  if isinstance(state, dict):
    if GRID in state:
      return decode_leaf(state)
    return {key: decode_tree(value) for key, value in state.items()}
  return state
