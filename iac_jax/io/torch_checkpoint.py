"""Reads the tensors of a `torch.save` file without PyTorch, and without running its code.

A `torch.save` file (PyTorch >= 1.6) is a zip archive: `<prefix>/data.pkl`, a pickle of
the saved object in which every tensor is a call of `torch._utils._rebuild_tensor_v2`
on a storage named by a persistent id `('storage', torch.FloatStorage, key, location,
numel)`, and the raw little-endian bytes of each storage as `<prefix>/data/<key>`.
Older files (`_use_new_zipfile_serialization=False`, and PyTorch < 1.6) are a sequence
of pickles: a magic number, a protocol version, system information, the object (with
the persistent id `(..., numel, view_metadata)`), the sorted storage keys, and then
each storage as an int64 element count followed by its bytes.

Unpickling an arbitrary file can run arbitrary code: a pickle names callables (globals)
and calls them. The unpickler here resolves only the globals that rebuild tensors and
containers, each to a stand-in of its own that records the tensor's storage, offset,
size and stride, and refuses every other global (what `torch.load(weights_only=True)`
promises, here without torch). Every size read from the file is checked before it is
used: storages against the archive's member sizes or the bytes left in the file, tensor
views against their storage, and the total against `MAX_BYTES`.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import math
import os
import pickle
import struct
import zipfile
from typing import Any, BinaryIO

import numpy as np

# The most bytes of tensor data read from one file (the largest CompressAI
# mean-scale hyperprior is ~80 MB; a training checkpoint with Adam's state ~4x that).
MAX_BYTES = 4 << 30
_MAX_PICKLE_BYTES = 256 << 20
_MAX_DIMS = 8
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    'FloatStorage': np.dtype('<f4'), 'DoubleStorage': np.dtype('<f8'),
    'HalfStorage': np.dtype('<f2'), 'BFloat16Storage': np.dtype('<u2'),
    'LongStorage': np.dtype('<i8'), 'IntStorage': np.dtype('<i4'),
    'ShortStorage': np.dtype('<i2'), 'CharStorage': np.dtype('i1'),
    'ByteStorage': np.dtype('u1'), 'BoolStorage': np.dtype('?'),
}


class CheckpointError(ValueError):
  """The file is not a readable checkpoint, or asks for something other than tensors."""


@dataclasses.dataclass(frozen=True)
class _StorageType:
  name: str

  @property
  def dtype(self) -> np.dtype:
    return _STORAGE_DTYPES[self.name]


@dataclasses.dataclass(frozen=True)
class _Storage:
  key: str
  dtype: np.dtype
  numel: int
  bfloat16: bool


@dataclasses.dataclass(frozen=True)
class _TensorRef:
  """A tensor as the pickle describes it; becomes a NumPy array once storages are read."""
  storage: _Storage
  offset: int
  size: tuple
  stride: tuple


def _rebuild_tensor(storage, storage_offset, size, stride, *unused_args):
  if not isinstance(storage, _Storage):
    raise CheckpointError('a tensor in the checkpoint is not backed by a storage')
  return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, *unused_args):
  return data


_ALLOWED = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
  """Resolves only tensor-rebuilding globals, each to a stand-in; refuses the rest."""

  def __init__(self, file: BinaryIO, storages: dict[str, _Storage]):
    super().__init__(file)
    self._storages = storages

  def find_class(self, module: str, name: str):
    if (module, name) in _ALLOWED:
      return _ALLOWED[(module, name)]
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise CheckpointError(
        f'the checkpoint asks for {module}.{name}: only tensors and containers may be '
        'loaded (an arbitrary global could run code), so the file is refused')

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == 'storage'
            and isinstance(pid[1], _StorageType) and isinstance(pid[4], int)):
      raise CheckpointError(f'unsupported storage reference in the checkpoint: {pid!r:.80}')
    if len(pid) == 6 and pid[5] is not None:
      raise CheckpointError('the checkpoint uses storage views (PyTorch < 1.0); '
                            're-save it with a recent PyTorch')
    storage_type, key, numel = pid[1], str(pid[2]), pid[4]
    if numel < 0 or numel * storage_type.dtype.itemsize > MAX_BYTES:
      raise CheckpointError(f'storage {key} declares an impossible size ({numel} elements)')
    storage = _Storage(key, storage_type.dtype, numel, storage_type.name == 'BFloat16Storage')
    if self._storages.setdefault(key, storage) != storage:
      raise CheckpointError(f'storage {key} is declared twice with different types or sizes')
    return storage


# What pickle raises on corrupt or hostile data (besides our CheckpointError).
_CORRUPT = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, OverflowError, RecursionError, struct.error)


def _unpickle(data: bytes | BinaryIO, storages: dict[str, _Storage]) -> Any:
  file = io.BytesIO(data) if isinstance(data, bytes) else data
  try:
    return _RestrictedUnpickler(file, storages).load()
  except CheckpointError:
    raise
  except _CORRUPT as e:
    raise CheckpointError(f'corrupt checkpoint pickle ({type(e).__name__}: {e})') from None


def _materialize(obj: Any, read_storage) -> Any:
  """Replaces every _TensorRef in nested dicts, lists and tuples by a NumPy array."""
  budget = [MAX_BYTES]

  def convert(ref: _TensorRef) -> np.ndarray:
    size, stride, offset = ref.size, ref.stride, ref.offset
    ints = lambda t: all(isinstance(v, int) and v >= 0 for v in t)
    if (len(size) > _MAX_DIMS or len(stride) != len(size) or not ints(size)
        or not ints(stride) or not isinstance(offset, int) or offset < 0):
      raise CheckpointError(f'a tensor of storage {ref.storage.key} has an invalid '
                            f'size {size}, stride {stride} or offset {offset}')
    count = math.prod(size)
    budget[0] -= count * ref.storage.dtype.itemsize
    if budget[0] < 0:
      raise CheckpointError(f'the checkpoint holds more than {MAX_BYTES} bytes of tensors')
    if count and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= ref.storage.numel:
      raise CheckpointError(f'a tensor reaches beyond its storage {ref.storage.key}')
    flat = read_storage(ref.storage)
    if count == 0:
      return np.zeros(size, flat.dtype)
    item = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(flat[offset:], size, [s * item for s in stride])
    out = np.array(view)
    if ref.storage.bfloat16:  # the upper half of a float32
      out = (out.astype(np.uint32) << 16).view(np.float32)
    return out

  def walk(o):
    if isinstance(o, _TensorRef):
      return convert(o)
    if isinstance(o, dict):
      return type(o)((k, walk(v)) for k, v in o.items()) if isinstance(
          o, collections.OrderedDict) else {k: walk(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
      return type(o)(walk(v) for v in o)
    return o

  return walk(obj)


def _read_zip(archive: zipfile.ZipFile) -> Any:
  pickles = [i for i in archive.infolist() if i.filename.endswith('/data.pkl')
             and i.filename.count('/') == 1]
  if len(pickles) != 1:
    raise CheckpointError('not a torch.save archive (no <prefix>/data.pkl)')
  info = pickles[0]
  prefix = info.filename[:-len('data.pkl')]
  names = {i.filename: i for i in archive.infolist()}
  order = names.get(prefix + 'byteorder')
  if order is not None and archive.read(order).strip() not in (b'little', b''):
    raise CheckpointError('the checkpoint was written on a big-endian machine')
  if info.file_size > _MAX_PICKLE_BYTES:
    raise CheckpointError(f'the checkpoint pickle is too large ({info.file_size} bytes)')
  storages: dict[str, _Storage] = {}
  obj = _unpickle(archive.read(info), storages)
  cache: dict[str, np.ndarray] = {}

  def read_storage(storage: _Storage) -> np.ndarray:
    if storage.key not in cache:
      member = names.get(f'{prefix}data/{storage.key}')
      nbytes = storage.numel * storage.dtype.itemsize
      if member is None:
        raise CheckpointError(f'storage {storage.key} is missing from the archive')
      if member.file_size != nbytes:
        raise CheckpointError(f'storage {storage.key} holds {member.file_size} bytes, '
                              f'its tensors declare {nbytes}')
      cache[storage.key] = np.frombuffer(archive.read(member), storage.dtype)
    return cache[storage.key]

  return _materialize(obj, read_storage)


def _read_legacy(f: BinaryIO, file_size: int) -> Any:
  storages: dict[str, _Storage] = {}
  if _unpickle(f, storages) != _LEGACY_MAGIC:
    raise CheckpointError('not a PyTorch checkpoint (a pickle without torch\'s magic number)')
  if _unpickle(f, storages) != _LEGACY_PROTOCOL:
    raise CheckpointError('unsupported legacy PyTorch checkpoint protocol')
  _unpickle(f, storages)  # system information: byte order, type sizes
  obj = _unpickle(f, storages)
  keys = _unpickle(f, storages)
  if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)
          and set(keys) == set(storages)):
    raise CheckpointError('the checkpoint\'s storage list does not match its tensors')
  data: dict[str, np.ndarray] = {}
  for key in keys:
    storage = storages[key]
    header = f.read(8)
    if len(header) != 8 or struct.unpack('<q', header)[0] != storage.numel:
      raise CheckpointError(f'storage {key} has a wrong or missing size header')
    nbytes = storage.numel * storage.dtype.itemsize
    if nbytes > file_size - f.tell():
      raise CheckpointError(f'the checkpoint is truncated (storage {key})')
    data[key] = np.frombuffer(f.read(nbytes), storage.dtype)
  return _materialize(obj, lambda s: data[s.key])


def _read_npz(archive: zipfile.ZipFile, path: str) -> dict[str, np.ndarray]:
  if sum(i.file_size for i in archive.infolist()) > MAX_BYTES:
    raise CheckpointError(f'{path} holds more than {MAX_BYTES} bytes')
  with np.load(path, allow_pickle=False) as npz:
    return {k: npz[k] for k in npz.files}


def read_checkpoint(path: str) -> Any:
  """The object a `torch.save` file (zip or legacy) holds, tensors as NumPy arrays;
  an `.npz` file as a dict of its arrays.

  Raises CheckpointError (a ValueError) for anything else, and for a pickle that asks
  for a global other than those that rebuild tensors and containers.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'checkpoint not found: {path}')
  size = os.path.getsize(path)
  try:
    if zipfile.is_zipfile(path):
      with zipfile.ZipFile(path) as archive:
        if all(n.endswith('.npy') for n in archive.namelist()):
          return _read_npz(archive, path)
        return _read_zip(archive)
    with open(path, 'rb') as f:
      if f.read(1) != b'\x80':  # a pickle of protocol >= 2 starts with PROTO
        raise CheckpointError(f'{path} is not a PyTorch checkpoint (a torch.save zip or '
                              'pickle) or an .npz')
      f.seek(0)
      return _read_legacy(f, size)
  except zipfile.BadZipFile as e:
    raise CheckpointError(f'{path} is a damaged zip archive: {e}') from None
