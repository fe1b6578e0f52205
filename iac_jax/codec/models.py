"""Model files and the registry of shipped models.

A model file is the flax-msgpack serialization of the parameter pytree (large leaves
as the integers and steps of their grid, `weight_grid`), with a JSON
sidecar (`<name>.json`) naming the config and describing the training. The model's
fingerprint (SHA-256 of the canonical parameter bytes) goes into every bitstream, so
a decoder can refuse a stream made with different weights.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from typing import Any

import jax
import numpy as np
from flax import serialization

from iac_jax.codec import weight_grid
from iac_jax.codec.configs import ModelConfig, get_config
from iac_jax.codec.hyperprior import MeanScaleHyperprior, init_params
from iac_jax.io import atomic_io

# The shipped weights stay at the package root (iac_jax/weights), one level up.
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'weights')
# The model the CLI and the demo use when none is named.
DEFAULT_MODEL = 'small-beta100'
_MAX_MODEL_BYTES = 1 << 30


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
  """A named, fixed set of hyperprior parameters.

  Attributes:
    name: identifier written into bitstreams (at most 64 ASCII characters).
    config: the architecture.
    params: the parameter pytree (float32 leaves).
    metadata: free-form description (beta, steps, data).
  """

  name: str
  config: ModelConfig
  params: Any
  metadata: dict = dataclasses.field(default_factory=dict)

  @property
  def module(self) -> MeanScaleHyperprior:
    return MeanScaleHyperprior(self.config)

  @functools.cached_property
  def fingerprint(self) -> bytes:
    """8 bytes identifying the exact parameter values."""
    return params_fingerprint(self.params)


# The rate weight of `beta * bpp + MSE(255)` assumed for a model that does not record
# its own (as `AdaptationConfig.beta` defaults to).
DEFAULT_BETA = 100.0


def default_beta(model: Model) -> float:
  """The beta `model` was trained with (its metadata), else DEFAULT_BETA: what
  adaptation uses unless told otherwise, so that it optimizes the model's own trade-off."""
  return float(model.metadata.get('beta', DEFAULT_BETA))


def params_fingerprint(params: Any) -> bytes:
  h = hashlib.sha256()
  for path, leaf in sorted(jax.tree_util.tree_flatten_with_path(params)[0],
                           key=lambda kv: jax.tree_util.keystr(kv[0])):
    leaf = np.ascontiguousarray(np.asarray(leaf, np.float32))
    h.update(jax.tree_util.keystr(path).encode())
    h.update(repr(leaf.shape).encode())
    h.update(leaf.tobytes())
  return h.digest()[:8]


def init_model(config_name: str, seed: int = 0, name: str | None = None) -> Model:
  """A randomly initialized model (for tests and the start of training)."""
  config = get_config(config_name)
  params = init_params(config, jax.random.PRNGKey(seed))
  params = jax.tree.map(np.asarray, params)
  return Model(name or f'{config_name}-init{seed}', config, params,
               {'config': config_name, 'steps': 0})


def params_bytes(params: Any) -> bytes:
  """What a model file (.msgpack) holds for `params`: see `save_model`."""
  return serialization.msgpack_serialize(
      serialization.to_state_dict(jax.tree.map(weight_grid.encode_leaf, params)))


def save_model(model: Model, path: str) -> None:
  """Writes `path` (msgpack) and its `.json` sidecar, each atomically.

  Saving is lossless: leaves on a per-channel grid (`weight_grid.grid_precision`, what
  ships) are stored as their integers and steps, leaves of float16 values
  (`weight_grid.half_precision`) as float16, the others as float32.
  """
  if not path.endswith('.msgpack'):
    raise ValueError('model files end in .msgpack')
  atomic_io.write_bytes(path, params_bytes(model.params))
  meta = dict(model.metadata, config=model.config.name, name=model.name)
  atomic_io.write_bytes(path[:-len('.msgpack')] + '.json',
                        (json.dumps(meta, indent=2, sort_keys=True) + '\n').encode())


def _read_model_file(path: str, name: str) -> Model:
  if not os.path.exists(path):  # else the error would name the .json sidecar
    raise FileNotFoundError(f'model file not found: {path}')
  meta_path = path[:-len('.msgpack')] + '.json'
  try:
    with open(meta_path) as f:
      meta = json.load(f)
    size = os.path.getsize(path)
    if size > _MAX_MODEL_BYTES:
      raise ValueError(f'model file {path} is too large ({size} bytes)')
    with open(path, 'rb') as f:
      raw = f.read()
  except FileNotFoundError as e:
    raise FileNotFoundError(f'model file not found: {e.filename}') from None
  config = get_config(meta['config'])
  template = jax.eval_shape(lambda: init_params(config, jax.random.PRNGKey(0)))
  try:
    state = weight_grid.decode_tree(serialization.msgpack_restore(raw))
    params = serialization.from_state_dict(template, state)
  except (ValueError, TypeError, KeyError) as e:  # what msgpack and flax raise on bad files
    raise ValueError(f'cannot read model file {path}: {e}') from None
  params = jax.tree.map(lambda a: np.asarray(a, np.float32), params)
  shapes_ok = jax.tree.map(lambda a, t: a.shape == t.shape, params, template)
  if not all(jax.tree.leaves(shapes_ok)):
    raise ValueError(f'model file {path} does not match config {config.name!r}')
  return Model(name, config, params, meta)


def shipped_models() -> list[str]:
  """Names of the models that ship with the package."""
  if not os.path.isdir(WEIGHTS_DIR):
    return []
  return sorted(f[:-len('.msgpack')] for f in os.listdir(WEIGHTS_DIR)
                if f.endswith('.msgpack'))


_CACHE: dict[str, Model] = {}


def load_model(name_or_path: str) -> Model:
  """Loads a shipped model by name, or a model file by path (`.msgpack`)."""
  if name_or_path in _CACHE:
    return _CACHE[name_or_path]
  if name_or_path.endswith('.msgpack') or os.sep in name_or_path:
    path = name_or_path
    name = os.path.basename(path)[:-len('.msgpack')]
  elif name_or_path in shipped_models():
    path = os.path.join(WEIGHTS_DIR, name_or_path + '.msgpack')
    name = name_or_path
  else:
    raise ValueError(f'unknown model {name_or_path!r}; shipped models: '
                     f'{shipped_models()}; or give a path to a .msgpack file')
  model = _read_model_file(path, name)
  _CACHE[name_or_path] = model
  return model


def describe_shipped() -> list[dict]:
  """Name, config, beta, cumulative training steps, wall-clock and CPU hours, data and
  how it was made (one line per training run) of each shipped model."""
  out = []
  for name in shipped_models():
    with open(os.path.join(WEIGHTS_DIR, name + '.json')) as f:
      meta = json.load(f)
    out.append({'name': name, 'config': meta.get('config'), 'beta': meta.get('beta'),
                'steps': meta.get('cumulative_steps', meta.get('steps')),
                'train_hours': meta.get('cumulative_hours', meta.get('train_hours')),
                'cpu_hours': meta.get('cumulative_cpu_hours'),
                'init_from': meta.get('init_from'), 'data': meta.get('data'),
                'history': meta.get('history', [])})
  return out
