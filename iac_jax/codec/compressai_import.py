"""CompressAI's MeanScaleHyperprior ("mbt2018-mean") checkpoints as iac-jax models.

Our hyperprior is CompressAI's layer for layer (`tests/codec/test_layers.py`), so
importing is a change of layout only, with no approximation:

  Conv2d weight [out, in, kh, kw]           -> kernel [kh, kw, in, out]
  ConvTranspose2d weight [in, out, kh, kw]  -> kernel [kh, kw, in, out] (no flip: our
                                               SubpixelConvTranspose is PyTorch's)
  GDN beta [C], gamma [C, C]                -> the same tensors (same reparameterization)
  entropy_bottleneck.matrices.i, biases.i,  -> z_prior matrix{i}, bias{i}, factor{i}
    factors.i (older files: _matrix{i}, ...,
    the zoo's own: _matrices.{i}, ...)
  entropy_bottleneck.quantiles [N, 1, 3]    -> z_prior medians = quantiles[:, 0, 1]

The CDF buffers (`_quantized_cdf`, `_offset`, `_cdf_length`, `scale_table`) are not
needed: our codec derives its tables from the parameters. The fixed constants CompressAI
stores as buffers (scale and likelihood bounds, GDN pedestals) are checked against ours.

The checkpoint is read by `torch_checkpoint` (no PyTorch, no code from the file runs).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping

import jax
import numpy as np

from iac_jax.codec import models
from iac_jax.codec.configs import CONFIGS, ModelConfig
from iac_jax.codec.hyperprior import init_params
from iac_jax.io.torch_checkpoint import CheckpointError, read_checkpoint

# CompressAI's module index -> our (transform, layer), in the reference's layer order.
_LAYERS = {
    'g_a.0': ('g_a', 'conv0'), 'g_a.1': ('g_a', 'gdn0'), 'g_a.2': ('g_a', 'conv1'),
    'g_a.3': ('g_a', 'gdn1'), 'g_a.4': ('g_a', 'conv2'), 'g_a.5': ('g_a', 'gdn2'),
    'g_a.6': ('g_a', 'conv3'),
    'g_s.0': ('g_s', 'deconv0'), 'g_s.1': ('g_s', 'igdn0'), 'g_s.2': ('g_s', 'deconv1'),
    'g_s.3': ('g_s', 'igdn1'), 'g_s.4': ('g_s', 'deconv2'), 'g_s.5': ('g_s', 'igdn2'),
    'g_s.6': ('g_s', 'deconv3'),
    'h_a.0': ('h_a', 'conv0'), 'h_a.2': ('h_a', 'conv1'), 'h_a.4': ('h_a', 'conv2'),
    'h_s.0': ('h_s', 'deconv0'), 'h_s.2': ('h_s', 'deconv1'), 'h_s.4': ('h_s', 'conv2'),
}
_FILTERS = (3, 3, 3, 3)
_EB = 'entropy_bottleneck.'

# Buffers CompressAI keeps beside the parameters: derived tables (ignored) and fixed
# constants, each with the value our model hard-codes (checked, float32 tolerance).
_DERIVED_BUFFERS = re.compile(
    r'^(entropy_bottleneck|gaussian_conditional)\.(_offset|_quantized_cdf|_cdf_length)$'
    r'|^gaussian_conditional\.scale_table$')
_CONSTANTS = {
    'entropy_bottleneck.likelihood_lower_bound.bound': 1e-9,
    'gaussian_conditional.likelihood_lower_bound.bound': 1e-9,
    'gaussian_conditional.lower_bound_scale.bound': 0.11,
    'gaussian_conditional.scale_bound': 0.11,
}
_GDN_CONSTANTS = re.compile(r'^g_[as]\.[135]\.(beta|gamma)_reparam\.(pedestal|lower_bound\.bound)$')
_PEDESTAL = 2.0**-36
_BETA_MIN = 1e-6


def compressai_shapes(n: int, m: int) -> dict[str, tuple[int, ...]]:
  """Every parameter of CompressAI's MeanScaleHyperprior(N, M), in its own layouts."""
  conv = lambda i, o, k=5: {'weight': (o, i, k, k), 'bias': (o,)}
  deconv = lambda i, o: {'weight': (i, o, 5, 5), 'bias': (o,)}
  gdn = lambda c: {'beta': (c,), 'gamma': (c, c)}
  layers = {
      'g_a.0': conv(3, n), 'g_a.1': gdn(n), 'g_a.2': conv(n, n), 'g_a.3': gdn(n),
      'g_a.4': conv(n, n), 'g_a.5': gdn(n), 'g_a.6': conv(n, m),
      'g_s.0': deconv(m, n), 'g_s.1': gdn(n), 'g_s.2': deconv(n, n), 'g_s.3': gdn(n),
      'g_s.4': deconv(n, n), 'g_s.5': gdn(n), 'g_s.6': deconv(n, 3),
      'h_a.0': conv(m, n, 3), 'h_a.2': conv(n, n), 'h_a.4': conv(n, n),
      'h_s.0': deconv(n, m), 'h_s.2': deconv(m, m * 3 // 2),
      'h_s.4': conv(m * 3 // 2, m * 2, 3),
  }
  shapes = {f'{k}.{p}': s for k, v in layers.items() for p, s in v.items()}
  widths = (1,) + _FILTERS + (1,)
  for i in range(len(_FILTERS) + 1):
    shapes[f'{_EB}matrices.{i}'] = (n, widths[i + 1], widths[i])
    shapes[f'{_EB}biases.{i}'] = (n, widths[i + 1], 1)
    if i < len(_FILTERS):
      shapes[f'{_EB}factors.{i}'] = (n, widths[i + 1], 1)
  shapes[f'{_EB}quantiles'] = (n, 1, 3)
  return shapes


def _error(message: str) -> CheckpointError:
  return CheckpointError(f'not an importable CompressAI mbt2018-mean checkpoint: {message}')


def select_state_dict(obj) -> dict[str, np.ndarray]:
  """The state_dict of a checkpoint: the object itself, its 'state_dict' entry (as
  training scripts save it), or an .npz's `state_dict/` arrays. Old entropy-bottleneck
  key names and DataParallel's `module.` prefix are renamed to CompressAI's current ones."""
  if not isinstance(obj, Mapping):
    raise _error(f'the file holds a {type(obj).__name__}, not a state_dict')
  if isinstance(obj.get('state_dict'), Mapping):
    obj = obj['state_dict']
  elif any(str(k).startswith('state_dict/') for k in obj):
    obj = {k[len('state_dict/'):]: v for k, v in obj.items() if k.startswith('state_dict/')}
  if not all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items()):
    raise _error(f'not a state_dict of tensors (top-level keys: {sorted(map(str, obj))[:8]})')
  if obj and all(k.startswith('module.') for k in obj):
    obj = {k[len('module.'):]: v for k, v in obj.items()}
  # CompressAI 1.0's `_matrices.0` (zoo files), 1.1's `_matrix0`, now `matrices.0`.
  old = re.compile(r'^entropy_bottleneck\.(?:_(matrix|bias|factor)(\d+)'
                   r'|_(matrices|biases|factors)\.(\d+))$')
  plural = {'matrix': 'matrices', 'bias': 'biases', 'factor': 'factors'}

  def rename(k):
    match = old.match(k)
    if not match:
      return k
    kind = plural[match.group(1)] if match.group(1) else match.group(3)
    return f'{_EB}{kind}.{match.group(2) or match.group(4)}'
  return {rename(k): v for k, v in obj.items()}


def _identify(sd: Mapping[str, np.ndarray]) -> tuple[int, int]:
  """(N, M) of a MeanScaleHyperprior state_dict; a clear error for other models."""
  if any(k.startswith(('context_prediction.', 'entropy_parameters.')) for k in sd):
    raise _error('it has a context model (context_prediction, entropy_parameters): '
                 'mbt2018 or cheng2020; only the mean-scale hyperprior without one is '
                 'supported')
  plain = re.compile(r'^g_[as]\.\d+\.(weight|bias|beta|gamma|(beta|gamma)_reparam\..+)$')
  other = [k for k in sd if k.startswith(('g_a.', 'g_s.')) and not plain.match(k)]
  if other:
    raise _error(f'its g_a/g_s are not plain convolutions and GDNs (tensor {other[0]}: '
                 'cheng2020 or another model)')
  for key in ('g_a.0.weight', 'g_a.6.weight', 'h_a.0.weight', 'h_s.0.weight'):
    if key not in sd:
      raise _error(f'tensor {key} is missing')
  n, m = sd['g_a.0.weight'].shape[0], sd['g_a.6.weight'].shape[0]
  if sd['h_s.0.weight'].shape[:2] == (n, n) and n != m:
    raise _error(f'h_s.0.weight has shape {sd["h_s.0.weight"].shape} (deconv N -> N): a '
                 'ScaleHyperprior (bmshj2018-hyperprior); only MeanScaleHyperprior '
                 '(mbt2018-mean) is supported')
  return n, m


def _check_constants(sd: Mapping[str, np.ndarray], unknown: list[str]) -> None:
  expected = dict(_CONSTANTS)
  for k in sd:
    match = _GDN_CONSTANTS.match(k)
    if match:
      bound = _BETA_MIN if match.group(1) == 'beta' else 0.0
      expected[k] = (_PEDESTAL if match.group(2) == 'pedestal'
                     else np.sqrt(bound + _PEDESTAL))
  for k, v in sd.items():
    if k in expected:
      if v.size != 1 or not np.allclose(v.astype(np.float64), expected[k], rtol=1e-5):
        raise _error(f'{k} is {v.ravel()[:4]}, iac-jax\'s model has {expected[k]:g}')
    elif k == 'gaussian_conditional.scale_table' and v.size:
      table = np.exp(np.linspace(np.log(0.11), np.log(256.0), 64))
      if v.shape != (64,) or not np.allclose(v, table, rtol=1e-5):
        raise _error('its scale table is not CompressAI\'s default (64 scales 0.11..256)')
    elif not _DERIVED_BUFFERS.match(k) and k != 'entropy_bottleneck.target':
      unknown.append(k)


def convert_state_dict(state_dict: Mapping[str, np.ndarray]) -> tuple[ModelConfig, dict]:
  """A CompressAI MeanScaleHyperprior state_dict (NumPy arrays, current or old key names)
  -> (our config, our parameter pytree of float32 arrays)."""
  sd = select_state_dict(state_dict)
  n, m = _identify(sd)
  want = compressai_shapes(n, m)
  for key, shape in want.items():
    if key not in sd:
      raise _error(f'tensor {key} is missing (N={n}, M={m})')
    if tuple(sd[key].shape) != shape:
      raise _error(f'tensor {key} has shape {tuple(sd[key].shape)}, expected {shape} '
                   f'for N={n}, M={m}')
    if not np.issubdtype(sd[key].dtype, np.floating) or not np.all(np.isfinite(sd[key])):
      raise _error(f'tensor {key} is not finite floating point ({sd[key].dtype})')
  unknown: list[str] = []
  _check_constants({k: v for k, v in sd.items() if k not in want}, unknown)
  if unknown:
    raise _error(f'unexpected tensors {unknown[:4]}: another CompressAI model?')
  matches = [c for c in CONFIGS.values() if (c.num_filters, c.num_latents) == (n, m)
             and tuple(c.factorized_filters) == _FILTERS]
  if not matches:
    known = ', '.join(f'{c.name} (N={c.num_filters}, M={c.num_latents})'
                      for c in CONFIGS.values())
    raise _error(f'N={n}, M={m} matches no registered config; registered: {known}')
  config = matches[0]
  f32 = lambda k: np.ascontiguousarray(sd[k], np.float32)
  params: dict = {part: {} for part in ('g_a', 'g_s', 'h_a', 'h_s')}
  for module, (part, layer) in _LAYERS.items():
    if 'gdn' in layer:
      params[part][layer] = {'beta': f32(f'{module}.beta'), 'gamma': f32(f'{module}.gamma')}
      continue
    w = f32(f'{module}.weight')
    kernel = w.transpose(2, 3, 0, 1) if 'deconv' in layer else w.transpose(2, 3, 1, 0)
    params[part][layer] = {'kernel': np.ascontiguousarray(kernel),
                           'bias': f32(f'{module}.bias')}
  z_prior = {}
  for i in range(len(_FILTERS) + 1):
    z_prior[f'matrix{i}'] = f32(f'{_EB}matrices.{i}')
    z_prior[f'bias{i}'] = f32(f'{_EB}biases.{i}')
    if i < len(_FILTERS):
      z_prior[f'factor{i}'] = f32(f'{_EB}factors.{i}')
  z_prior['medians'] = np.ascontiguousarray(f32(f'{_EB}quantiles')[:, 0, 1])
  params['z_prior'] = z_prior
  _check_against_template(config, params)
  return config, params


def _check_against_template(config: ModelConfig, params: dict) -> None:
  template = jax.eval_shape(lambda: init_params(config, jax.random.PRNGKey(0)))
  got = jax.tree_util.tree_structure(params)
  if got != jax.tree_util.tree_structure(template):
    raise AssertionError(f'converted tree {got} is not the model\'s')
  for (path, a), t in zip(jax.tree_util.tree_flatten_with_path(params)[0],
                          jax.tree.leaves(template)):
    if a.shape != t.shape:
      raise AssertionError(f'{jax.tree_util.keystr(path)}: {a.shape} != {t.shape}')


# CompressAI's training lambdas of mbt2018-mean per quality (compressai/zoo/image.py
# trains with lambda * 255^2 * MSE + bpp, i.e. our beta = 1 / lambda).
_QUALITY_LAMBDAS = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483,
                    7: 0.0932, 8: 0.1800}


def _sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      h.update(block)
  return h.hexdigest()


def load_compressai(path: str, name: str | None = None, beta: float | None = None
                    ) -> models.Model:
  """A Model from a CompressAI MeanScaleHyperprior checkpoint (`torch.save` file or
  .npz). `beta` (our rate weight, 1 / CompressAI's lambda) defaults to that of the
  quality named in a zoo file name (`mbt2018-mean-3-...`)."""
  config, params = convert_state_dict(read_checkpoint(path))
  base = os.path.basename(path)
  meta = {'config': config.name, 'N': config.num_filters, 'M': config.num_latents,
          'source': base, 'source_sha256': _sha256(path),
          'imported_from': 'CompressAI MeanScaleHyperprior (mbt2018-mean)',
          'data': 'imported from CompressAI'}
  quality = re.match(r'^mbt2018-mean-([1-8])-', base)
  if quality:
    meta['quality'] = int(quality.group(1))
    beta = beta or 1.0 / _QUALITY_LAMBDAS[meta['quality']]
  if beta:
    meta['beta'] = float(beta)
  name = name or re.sub(r'(\.pth)?(\.tar)?$|\.npz$|\.pt$', '', base)
  return models.Model(name, config, params, meta)


def import_checkpoint(path: str, output: str, beta: float | None = None) -> models.Model:
  """Converts a CompressAI checkpoint into MODEL.msgpack + MODEL.json (`output` ends in
  .msgpack); both are written only once the whole checkpoint has been read and checked."""
  if not output.endswith('.msgpack'):
    raise ValueError(f'the output must be a .msgpack file, got {output}')
  name = os.path.basename(output)[:-len('.msgpack')]
  if not name or not name.isascii() or len(name) > 64:
    raise ValueError(f'the model name {name!r} (the output file name) must be 1-64 '
                     'ASCII characters: bitstreams carry it')
  model = load_compressai(path, name, beta)
  new = [p for p in (output, output[:-len('.msgpack')] + '.json') if not os.path.exists(p)]
  try:
    models.save_model(model, output)
  except BaseException:  # e.g. the disk filled between the two files: leave neither
    for p in new:
      if os.path.exists(p):
        os.unlink(p)
    raise
  return model
