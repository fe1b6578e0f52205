"""Range coding of integer arrays with tensorflow-compression's coder ops.

The only module that imports TensorFlow, and only on first use: just the internals the
coder ops need, not TensorFlow's API (see `_import_without_tensorflows_api`).
Each value is coded under the table its index selects, as `value - offset`; values
outside a table's range are sent with the escape symbol and an Elias gamma code
(the ops' overflow mode, enabled by the negative precision in each table).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import sys
import types
from collections.abc import Callable

import numpy as np

from iac_jax.codec.entropy_models.tables import CdfTables


class RangeCodingError(ValueError):
  """The coded stream does not decode under the given tables."""


def available() -> bool:
  """Whether the coder ops are installed (checked without importing TensorFlow)."""
  return importlib.util.find_spec('tensorflow_compression_ops') is not None


@dataclasses.dataclass(frozen=True)
class _CoderOps:
  """The little of TensorFlow the coder needs: its ops, tensors in and out, errors."""

  ops: types.ModuleType  # tensorflow_compression_ops
  constant: Callable
  string: object
  int32: object
  op_error: type


class _UninitializedTensorFlow(types.ModuleType):
  """`tensorflow` whose `__init__` has not run yet: its submodules import as usual
  (`__path__` is set), and the first other attribute asked of it (`tf.constant`, by a
  user's `import tensorflow as tf`) runs the real `__init__` in place, so the package
  becomes the complete one."""

  def __getattr__(self, name: str):
    source = self.__dict__.pop('_pending_init', None)
    if source is None or name.startswith('__'):
      raise AttributeError(f"module 'tensorflow' has no attribute {name!r}")
    exec(compile(source, self.__file__, 'exec'), self.__dict__)  # noqa: S102
    return getattr(self, name)


def _import_without_tensorflows_api() -> _CoderOps:
  """The coder ops with only the TensorFlow internals they use (about 0.3 s instead of
  2-8 s for `import tensorflow`, whose API modules and Keras the coder never touches).

  `tensorflow` is registered as a package whose `__init__` is deferred until someone
  uses its API (`_UninitializedTensorFlow`), so importing `tensorflow.python...` does
  not build TensorFlow's whole API.
  """
  spec = importlib.util.find_spec('tensorflow')
  if spec is None or not spec.submodule_search_locations or not spec.origin:
    raise ImportError('tensorflow is not installed as a package')
  with open(spec.origin) as f:
    source = f.read()
  package = _UninitializedTensorFlow('tensorflow')
  package.__dict__.update(__path__=list(spec.submodule_search_locations), __spec__=spec,
                          __file__=spec.origin, __package__='tensorflow',
                          __loader__=spec.loader, _pending_init=source)
  sys.modules['tensorflow'] = package
  try:
    # pylint: disable=g-import-not-at-top
    from tensorflow.python import tf2
    from tensorflow.python.framework import config, constant_op, dtypes, errors, ops
    tf2.enable()
    ops.enable_eager_execution()
    import tensorflow_compression_ops as tfc
    # pylint: enable=g-import-not-at-top
  except Exception:
    if sys.modules.get('tensorflow') is package:
      del sys.modules['tensorflow']
    raise
  _hide_gpus(config.set_visible_devices)
  return _CoderOps(tfc, constant_op.constant, dtypes.string, dtypes.int32, errors.OpError)


def _import_with_tensorflow() -> _CoderOps:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_compression_ops as tfc  # pylint: disable=g-import-not-at-top
  _hide_gpus(tf.config.set_visible_devices)
  return _CoderOps(tfc, tf.constant, tf.string, tf.int32, tf.errors.OpError)


def _hide_gpus(set_visible_devices):
  # The coder runs on the CPU; TensorFlow must not claim a GPU that JAX uses.
  try:
    set_visible_devices([], 'GPU')
  except RuntimeError:
    pass


@functools.cache
def _ops() -> _CoderOps:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  # TensorFlow's C++ start-up writes CUDA plugin noise straight to fd 2; hide it.
  saved = os.dup(2)
  try:
    with open(os.devnull, 'w') as devnull:
      os.dup2(devnull.fileno(), 2)
      if 'tensorflow' in sys.modules:  # already imported: use it as it is
        return _import_with_tensorflow()
      try:
        return _import_without_tensorflows_api()
      except Exception:  # noqa: BLE001 (a TensorFlow whose internals moved)
        sys.modules.pop('tensorflow_compression_ops', None)
        return _import_with_tensorflow()
  finally:
    os.dup2(saved, 2)
    os.close(saved)


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
  tf = _ops()
  handle = tf.ops.create_range_encoder([], tf.constant(tables.lookup))
  handle = tf.ops.entropy_encode_index(
      handle, tf.constant(indexes), tf.constant(shifted.astype(np.int32)))
  return bytes(tf.ops.entropy_encode_finalize(handle).numpy())


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
  tf = _ops()
  try:
    handle = tf.ops.create_range_decoder(tf.constant(data, tf.string),
                                         tf.constant(tables.lookup))
    handle, decoded = tf.ops.entropy_decode_index(
        handle, tf.constant(indexes), tf.constant(indexes.shape, tf.int32), tf.int32)
    ok = bool(tf.ops.entropy_decode_finalize(handle).numpy())
  except tf.op_error as e:
    raise RangeCodingError(f'range decoder failed: {e.message}') from None
  if not ok:
    raise RangeCodingError('range decoder did not end where the stream ends')
  return decoded.numpy().astype(np.int64) + tables.offsets[indexes]
