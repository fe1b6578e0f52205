"""Weights on a per-channel grid: what ships is exactly what a model file reads back."""

import zlib

import jax
import numpy as np
import pytest

import iac_jax
from iac_jax.codec import weight_grid


def _kernel(seed=0, shape=(5, 5, 16, 32)):
  rng = np.random.default_rng(seed)
  return (rng.laplace(0, 0.05, shape) * rng.uniform(0.2, 3, shape[-1])).astype(np.float32)


def _bits_equal(a, b):
  np.testing.assert_array_equal(np.asarray(a, np.float32).view(np.int32),
                                np.asarray(b, np.float32).view(np.int32))


@pytest.mark.parametrize('bits', [2, 8, 9, 10])
def test_on_grid_uses_2_pow_bits_levels_per_channel_within_half_a_step(bits):
  a = _kernel()
  g = weight_grid.on_grid(a, bits)
  flat, gflat = a.reshape(-1, a.shape[-1]), g.reshape(-1, a.shape[-1])
  for c in range(a.shape[-1]):
    step = np.float32(np.float16(np.abs(flat[:, c]).max() / (2 ** (bits - 1) - 1)))
    k = gflat[:, c] / step
    np.testing.assert_array_equal(k, np.round(k))      # integer multiples of the step
    assert np.abs(k).max() == 2 ** (bits - 1) - 1      # the largest weight is the top level
    assert np.abs(gflat[:, c] - flat[:, c]).max() <= 0.5 * step * (1 + 2 ** -10)
  _bits_equal(weight_grid.on_grid(g, bits), g)          # rounding again changes nothing


def test_grid_precision_grids_large_leaves_and_halves_the_rest(tiny_model):
  g = weight_grid.grid_precision(tiny_model.params, bits=8)
  for a, b in zip(jax.tree.leaves(tiny_model.params), jax.tree.leaves(g)):
    a = np.asarray(a, np.float32)
    if a.ndim >= 2 and a.size >= weight_grid.MIN_GRID_SIZE:
      _bits_equal(b, weight_grid.on_grid(a, 8))
    else:
      _bits_equal(b, a.astype(np.float16).astype(np.float32))
  assert any(np.asarray(a).size >= weight_grid.MIN_GRID_SIZE
             for a in jax.tree.leaves(tiny_model.params))  # the first branch ran


@pytest.mark.parametrize('leaf', [
    weight_grid.on_grid(_kernel(1), 9),                   # 9 bits: high and low bytes
    weight_grid.on_grid(_kernel(2), 4),                   # int8
    weight_grid.on_grid(_kernel(3), 10),
    _kernel(4),                                           # float32, on no grid
    _kernel(5).astype(np.float16).astype(np.float32),     # float16 values
    np.array([[0.0, -0.0], [1.0, -2.0]], np.float32),     # a negative zero
    np.zeros((3, 4), np.float32),
    np.array([[1e-7, 3e-8], [-2e-7, 0]], np.float32),     # steps below float16's normals
    np.array([[0.25, 0.0], [-0.5, 0.0]], np.float32),     # an all-zero channel
    np.arange(6, dtype=np.float32) * np.float32(0.1),     # 1-D: never a grid
])
def test_encode_then_decode_is_bit_exact(leaf):
  _bits_equal(weight_grid.decode_leaf(weight_grid.encode_leaf(leaf)), leaf)


def test_grid_leaves_are_stored_as_their_integers():
  stored = weight_grid.encode_leaf(weight_grid.on_grid(_kernel(), 9))
  assert stored[weight_grid.GRID].dtype == np.int8
  assert stored[weight_grid.GRID_LOW].dtype == np.uint8
  assert stored[weight_grid.STEP].dtype == np.float16
  stored8 = weight_grid.encode_leaf(weight_grid.on_grid(_kernel(), 8))
  assert weight_grid.GRID_LOW not in stored8  # 8 bits: one byte a weight


def test_a_gridded_model_file_reads_back_exactly_and_is_smaller(tiny_model, tmp_path):
  half = iac_jax.Model('h', tiny_model.config, weight_grid.half_precision(tiny_model.params))
  sizes = {}
  for bits in (8, 9):
    grid = iac_jax.Model('g', tiny_model.config,
                         weight_grid.grid_precision(tiny_model.params, bits=bits))
    path = str(tmp_path / f'g{bits}.msgpack')
    iac_jax.save_model(grid, path)
    loaded = iac_jax.load_model(path)
    assert loaded.fingerprint == grid.fingerprint != half.fingerprint
    jax.tree.map(_bits_equal, loaded.params, grid.params)
    sizes[bits] = len(zlib.compress((tmp_path / f'g{bits}.msgpack').read_bytes()))
  iac_jax.save_model(half, str(tmp_path / 'h.msgpack'))
  sizes['float16'] = len(zlib.compress((tmp_path / 'h.msgpack').read_bytes()))
  assert sizes[8] < sizes[9] < sizes['float16']


@pytest.mark.parametrize('corrupt', [
    lambda s: s.update({weight_grid.STEP: s[weight_grid.STEP][:-1]}),          # step shape
    lambda s: s.update({weight_grid.GRID: s[weight_grid.GRID].astype(np.int16)}),
    lambda s: s.update({weight_grid.GRID_LOW: s[weight_grid.GRID_LOW][:1]}),   # low shape
    lambda s: s.update({weight_grid.STEP: np.full_like(s[weight_grid.STEP], np.inf)}),
    lambda s: s.update({'extra': np.zeros(1)}),
    lambda s: s.update({weight_grid.STEP: 1.0}),
])
def test_a_malformed_grid_is_refused(corrupt):
  stored = weight_grid.encode_leaf(weight_grid.on_grid(_kernel(), 9))
  corrupt(stored)
  with pytest.raises(ValueError, match='malformed grid'):
    weight_grid.decode_leaf(stored)


def test_a_model_file_with_a_malformed_grid_is_refused(tiny_model, tmp_path):
  from flax import serialization  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / 'g.msgpack')
  iac_jax.save_model(iac_jax.Model('g', tiny_model.config,
                                   weight_grid.grid_precision(tiny_model.params)), path)
  state = serialization.msgpack_restore((tmp_path / 'g.msgpack').read_bytes())
  grids = [d for d in jax.tree.leaves(state, is_leaf=lambda x: weight_grid.GRID in x
                                      if isinstance(x, dict) else False) if isinstance(d, dict)]
  assert grids
  grids[0][weight_grid.STEP] = grids[0][weight_grid.STEP][:1]
  with open(path, 'wb') as f:
    f.write(serialization.msgpack_serialize(state))
  with pytest.raises(ValueError, match='cannot read model file .*malformed grid'):
    iac_jax.load_model(path)


def test_unsupported_grid_sizes_are_refused():
  with pytest.raises(ValueError, match='not supported'):
    weight_grid.on_grid(_kernel(), 12)
