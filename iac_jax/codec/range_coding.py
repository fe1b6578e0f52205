"""Range coding of integer arrays with tensorflow-compression's coder ops.

The only module that imports TensorFlow, and only on first use (it takes seconds).
Each value is coded under the table its index selects, as `value - offset`; values
outside a table's range are sent with the escape symbol and an Elias gamma code
(the ops' overflow mode, enabled by the negative precision in each table).
"""

from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np

from iac_jax.codec.entropy_models.tables import CdfTables


class RangeCodingError(ValueError):
  """The coded stream does not decode under the given tables."""


def available() -> bool:
  """Whether the coder ops are installed (checked without importing TensorFlow)."""
  return importlib.util.find_spec('tensorflow_compression_ops') is not None


@functools.cache
def _ops():
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  # TensorFlow's C++ start-up writes CUDA plugin noise straight to fd 2; hide it.
  saved = os.dup(2)
  try:
    with open(os.devnull, 'w') as devnull:
      os.dup2(devnull.fileno(), 2)
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      import tensorflow_compression_ops as tfc  # pylint: disable=g-import-not-at-top
  finally:
    os.dup2(saved, 2)
    os.close(saved)
  # The coder runs on the CPU; TensorFlow must not claim a GPU that JAX uses.
  try:
    tf.config.set_visible_devices([], 'GPU')
  except RuntimeError:
    pass
  return tf, tfc


def _check(values_or_none, indexes: np.ndarray, tables: CdfTables):
  if indexes.size and (indexes.min() < 0 or indexes.max() >= tables.num_tables):
    raise ValueError('table index out of range')
  if values_or_none is not None and values_or_none.shape != indexes.shape:
    raise ValueError('values and indexes differ in shape')


def encode(values: np.ndarray, indexes: np.ndarray, tables: CdfTables) -> bytes:
  """Range-codes int values[...] under tables[indexes[...]]; returns the bytes."""
  values = np.asarray(values, np.int64)
  indexes = np.asarray(indexes, np.int32)
  _check(values, indexes, tables)
  if values.size == 0:
    return b''
  shifted = values - tables.offsets[indexes]
  if np.abs(shifted).max(initial=0) >= 2**30:
    raise ValueError('value too large to code')
  tf, tfc = _ops()
  handle = tfc.create_range_encoder([], tf.constant(tables.lookup))
  handle = tfc.entropy_encode_index(
      handle, tf.constant(indexes), tf.constant(shifted.astype(np.int32)))
  return bytes(tfc.entropy_encode_finalize(handle).numpy())


def decode(data: bytes, indexes: np.ndarray, tables: CdfTables) -> np.ndarray:
  """Inverse of `encode`: int32 values shaped like `indexes`.

  Raises RangeCodingError when the bytes do not decode to exactly this many values.
  """
  indexes = np.asarray(indexes, np.int32)
  _check(None, indexes, tables)
  if indexes.size == 0:
    if data:
      raise RangeCodingError('bytes left over in an empty section')
    return np.zeros(indexes.shape, np.int32)
  tf, tfc = _ops()
  try:
    handle = tfc.create_range_decoder(tf.constant(data, tf.string),
                                      tf.constant(tables.lookup))
    handle, decoded = tfc.entropy_decode_index(
        handle, tf.constant(indexes), tf.constant(indexes.shape, tf.int32), tf.int32)
    ok = bool(tfc.entropy_decode_finalize(handle).numpy())
  except tf.errors.OpError as e:
    raise RangeCodingError(f'range decoder failed: {e.message}') from None
  if not ok:
    raise RangeCodingError('range decoder did not end where the stream ends')
  return decoded.numpy().astype(np.int64) + tables.offsets[indexes]
