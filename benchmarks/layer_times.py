"""Per-layer forward+backward times of the hyperprior's main transforms on CPU.

  .venv/bin/python benchmarks/layer_times.py [--filters=64] [--latents=96] \
      [--batch=8] [--crop=128] [--repeats=5]

Times each layer of g_a, g_s, h_a and h_s (value and gradient with respect to input
and parameters), with the alternatives tried for the slow ones: transposed
convolutions via `lax.conv_transpose` (reference) or sub-pixel, and the stride-2
convolution via space-to-depth followed by a stride-1 convolution.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from iac_jax.codec.layers import downsampling, gdn, upsampling
from iac_jax.optim import host_memory

_FILTERS = flags.DEFINE_integer('filters', 64, 'N.')
_LATENTS = flags.DEFINE_integer('latents', 96, 'M.')
_BATCH = flags.DEFINE_integer('batch', 8, 'Batch.')
_CROP = flags.DEFINE_integer('crop', 128, 'Input side.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed calls per layer.')


def _subpixel(x, k):
  y = jax.lax.conv_general_dilated(x, upsampling.subpixel_kernel(k), (1, 1), 'SAME',
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return upsampling.depth_to_space(y, 2)


def _gdn(inverse):
  module = gdn.GDN(inverse=inverse)

  def f(x, params):
    return module.apply({'params': params}, x)
  return module, f


def _time(f, x, p):
  grad = jax.jit(jax.value_and_grad(lambda x, p: jnp.sum(f(x, p) ** 2), argnums=(0, 1)))
  jax.block_until_ready(grad(x, p))
  times = []
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    jax.block_until_ready(grad(x, p))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv):
  del argv
  n, m, b, s = _FILTERS.value, _LATENTS.value, _BATCH.value, _CROP.value
  rng = np.random.default_rng(0)
  rand = lambda *shape: jnp.asarray(rng.standard_normal(shape) * 0.1, jnp.float32)
  print(f'backend={jax.default_backend()} jax={jax.__version__} N={n} M={m} batch={b} '
        f'crop={s} huge_pages={host_memory.tunable_set()}  '
        f'(forward+backward, median of {_REPEATS.value})')
  x = rand(b, s, s, 3)
  k = rand(5, 5, 3, n)
  np.testing.assert_allclose(downsampling.strided_conv(x, k),
                             downsampling.conv_on_space_to_depth(x, k), atol=1e-4)
  total = {}
  side, cin = s, 3
  for i, cout in enumerate([n, n, n, m]):
    x, k = rand(b, side, side, cin), rand(5, 5, cin, cout)
    for name, f in (('conv', downsampling.strided_conv),
                    ('conv s2d', downsampling.conv_on_space_to_depth),
                    ('library', downsampling.conv5x5_stride2)):
      t = _time(f, x, k)
      total[name] = total.get(name, 0) + t
      print(f'g_a conv{i} {name:9s} {side}->{side // 2} {cin}->{cout}: {t * 1e3:8.1f} ms')
    side //= 2
    if i < 3:
      module, f = _gdn(False)
      xg = rand(b, side, side, cout)
      t = _time(f, xg, module.init(jax.random.PRNGKey(0), xg)['params'])
      total['gdn'] = total.get('gdn', 0) + t
      print(f'g_a gdn{i}   {side}x{side} {cout}: {t * 1e3:8.1f} ms')
    cin = cout
  for i, cout in enumerate([n, n, n, 3]):
    x, k = rand(b, side, side, cin), rand(5, 5, cin, cout)
    for name, f in (('subpixel', _subpixel),
                    ('reference', lambda x, k: upsampling.conv_transpose_reference(x, k))):
      t = _time(f, x, k)
      total[name] = total.get(name, 0) + t
      print(f'g_s deconv{i} {name:9s} {side}->{side * 2} {cin}->{cout}: {t * 1e3:8.1f} ms')
    side *= 2
    if i < 3:
      module, f = _gdn(True)
      xg = rand(b, side, side, cout)
      t = _time(f, xg, module.init(jax.random.PRNGKey(0), xg)['params'])
      total['igdn'] = total.get('igdn', 0) + t
      print(f'g_s igdn{i}  {side}x{side} {cout}: {t * 1e3:8.1f} ms')
    cin = cout
  # The hyperprior (CompressAI's layout): h_a on y, h_s on z, at 1/16 and 1/64 scale.
  side = s // 16
  conv1 = lambda x, k: jax.lax.conv_general_dilated(
      x, k, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  hyper = [('h_a conv0 3x3/1', conv1, side, 3, m, n), ('h_a conv1 5x5/2', downsampling.conv5x5_stride2, side, 5, n, n),
           ('h_a conv2 5x5/2', downsampling.conv5x5_stride2, side // 2, 5, n, n),
           ('h_s deconv0', _subpixel, side // 4, 5, n, m),
           ('h_s deconv1', _subpixel, side // 2, 5, m, m * 3 // 2),
           ('h_s conv2 3x3/1', conv1, side, 3, m * 3 // 2, 2 * m)]
  for name, f, hw, ks, cin, cout in hyper:
    x, k = rand(b, hw, hw, cin), rand(ks, ks, cin, cout)
    t = _time(f, x, k)
    total['hyper'] = total.get('hyper', 0) + t
    print(f'{name:17s} {hw}x{hw} {cin}->{cout}: {t * 1e3:8.1f} ms')
  print('totals: ' + ', '.join(f'{k} {v * 1e3:.1f} ms' for k, v in total.items()))


if __name__ == '__main__':
  app.run(main)
