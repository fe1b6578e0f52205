"""How often does a table index chosen from h_s differ between two machines?

The range decoder needs, for every latent of y, the same scale-table index the
encoder used; the index comes from h_s, a float computation. This records the
indexes of two paths: h_s in float32 on JAX's default device (`index32`, what the
codec did before) and the codec's host float64 path (`index64`,
`iac_jax/codec/entropy_parameters.py`). Run it on each machine (it imports no
TensorFlow, so it runs on an accelerator machine too):

  .venv/bin/python benchmarks/scale_index_flips.py --out=indexes_cpu.npz
  python benchmarks/scale_index_flips.py --out=indexes_gpu.npz        # on the GPU
  .venv/bin/python benchmarks/scale_index_flips.py --compare=indexes_cpu.npz,indexes_gpu.npz

Inputs: the sample photo and synthetic frames (no video reader needed), coded with
the shipped model; z is rounded on each machine as the encoder does, and the indexes
are taken for the encoder's z (saved in the first file) so that only h_s differs.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from PIL import Image

from iac_jax.codec import entropy_parameters, image_codec, models
from iac_jax.codec.entropy_models import gaussian
from iac_jax.codec.hyperprior import MeanScaleHyperprior


def inputs(synthetic: int = 8) -> dict[str, np.ndarray]:
  """The sample photo and `synthetic` noisy 512x512 frames (no video reader needed)."""
  here = os.path.dirname(os.path.abspath(__file__))
  path = os.path.join(here, '..', 'iac_jax', 'samples', 'rocket.png')
  with Image.open(path) as im:
    out = {'rocket': np.asarray(im.convert('RGB'))}
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[0:512, 0:512] / 512.0
  for i in range(synthetic):
    f = rng.uniform(2, 20, 3)
    base = np.stack([np.sin(f[0] * xx + i), np.cos(f[1] * yy), np.sin(f[2] * (xx + yy))], -1)
    noise = rng.normal(0, 8 + 4 * i, (512, 512, 3))
    out[f'synthetic{i}'] = np.clip(127 + 90 * base + noise, 0, 255).astype(np.uint8)
  return out


def compare(a_path: str, b_path: str) -> dict:
  """Prints, and returns, how many indexes of each path differ between two files."""
  a, b = np.load(a_path), np.load(b_path)
  print(f'machines: {a["device"]} vs {b["device"]}')
  out = {'machines': [str(a['device']), str(b['device'])]}
  for path in ('index32', 'index64'):
    total = flips = 0
    for key in sorted(k for k in a.files if k.endswith('/' + path)):
      if key not in b.files or a[key].shape != b[key].shape:
        raise ValueError(f'{b_path} has no {key} of shape {a[key].shape}')
      diff = int(np.sum(a[key] != b[key]))
      total += a[key].size
      flips += diff
      print(f'  {key:22s} {diff:8d} of {a[key].size:9d} differ')
    print(f'{path}: {flips} of {total} scale indexes differ ({flips / max(total, 1):.2e})')
    out[path] = {'differ': flips, 'total': total}
  return out


def machine_indexes(model, z_from: str | None = None, synthetic: int = 8) -> dict:
  """This machine's z and both paths' scale indexes for every input, as saved by --out.

  With `z_from` (an earlier file), its rounded z is used, as a decoder would."""
  earlier = np.load(z_from) if z_from else None
  module = MeanScaleHyperprior(model.config)
  hyper_synthesis = jax.jit(lambda p, z: module.apply({'params': p}, z,
                                                      method='hyper_synthesis'))
  saved = {'device': np.asarray(f'{jax.default_backend()} {jax.devices()[0].device_kind} '
                                f'jax {jax.__version__}')}
  for name, image in inputs(synthetic).items():
    if earlier is not None:
      z = earlier[f'{name}/z']
    else:
      x = jnp.asarray(image_codec.pad_to_multiple(image)[None], jnp.float32) / 255.0
      _, z = image_codec._analysis(model.config, model.params, x)  # pylint: disable=protected-access
      z = np.round(np.asarray(z) - model.params['z_prior']['medians']).astype(np.int32)
    z_hat = entropy_parameters.dequantize_z(z, model.params['z_prior']['medians'])
    _, sigma = hyper_synthesis(model.params, jnp.asarray(z_hat, jnp.float32))
    _, sigma64 = entropy_parameters.hyper_synthesis(model.params['h_s'], z_hat)
    saved[f'{name}/z'] = z
    saved[f'{name}/index32'] = gaussian.scale_indexes(np.asarray(sigma)).astype(np.int16)
    saved[f'{name}/index64'] = entropy_parameters.scale_indexes(sigma64).astype(np.int16)
  return saved


def main(argv):
  del argv
  if _COMPARE.value:
    if len(_COMPARE.value) != 2:
      raise app.UsageError('give --compare two files')
    compare(*_COMPARE.value)
    return
  if not _OUT.value:
    raise app.UsageError('give --out or --compare')
  saved = machine_indexes(models.load_model(_MODEL.value), _Z_FROM.value, _SYNTHETIC.value)
  np.savez_compressed(_OUT.value, **saved)
  print(f'wrote {_OUT.value}: {(len(saved) - 1) // 3} inputs on {saved["device"]}')


if __name__ == '__main__':
  # Flags only when run as a script: `accelerator_run.py` imports this module.
  _MODEL = flags.DEFINE_string('model', models.DEFAULT_MODEL, 'Model.')
  _OUT = flags.DEFINE_string('out', None, 'Write this machine\'s indexes here (.npz).')
  _Z_FROM = flags.DEFINE_string('z_from', None, 'Use the rounded z of this earlier --out file '
                                '(as a decoder would) instead of computing it here.')
  _COMPARE = flags.DEFINE_list('compare', None, 'Two .npz files to compare.')
  _SYNTHETIC = flags.DEFINE_integer('synthetic', 8, 'Synthetic 512x512 frames.')
  app.run(main)
