"""What coarser weights would cost: bytes per model against held-out RD.

  .venv/bin/python benchmarks/weight_precision.py --models=small-beta100,small-beta10 \
      --photos=../shared/data/train_images/skimage_retina.png,../shared/data/train_images/skimage_rocket.png

Shipped models are float16 values (3.5 MB a `small` model, 3.27 MB after git's zlib,
and git cannot delta-compress one snapshot against the last). This measures the
obvious smaller format: every leaf of at least --min_size values on a uniform grid
per output channel, the step max|w| / (2^(bits-1) - 1) rounded to a float16 (so the
model is exactly those values), the rest float16. For each model it prints the bytes
raw and after zlib (what git stores) and the held-out bpp and PSNR (photos at long
side 512, real bitstreams) against the float16 model. Nothing here is used by the
package; it informs how weights could ship (NOTES.md).
"""

from __future__ import annotations

import os
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE)]

import jax
import numpy as np
from absl import app, flags

from iac_jax.codec import models
from iac_jax.evaluation import image_rates
from iac_jax.io import image_io
from iac_jax.training import data


def on_grid(a: np.ndarray, bits: int) -> tuple[np.ndarray, bytes]:
  """`a` on a per-output-channel grid of 2^bits levels, and its stored bytes."""
  flat = a.reshape(-1, a.shape[-1])
  step = np.abs(flat).max(axis=0) / (2 ** (bits - 1) - 1)
  step = np.where(step > 0, step, 1).astype(np.float16).astype(np.float32)
  k = np.round(flat / step).astype(np.int32)
  stored = k.astype(np.int8 if bits <= 8 else np.int16).tobytes()
  return (k * step).reshape(a.shape), stored + step.astype(np.float16).tobytes()


def coarse(params, bits: int, min_size: int):
  """(params on the grids, their bytes); leaves under `min_size` stay float16."""
  leaves, treedef = jax.tree_util.tree_flatten(params)
  out, blob = [], []
  for a in leaves:
    a = np.asarray(a, np.float32)
    q, b = on_grid(a, bits) if a.size >= min_size else (a, a.astype(np.float16).tobytes())
    out.append(q)
    blob.append(b)
  return jax.tree_util.tree_unflatten(treedef, out), b''.join(blob)


def held_out(model: models.Model, photos: dict) -> tuple[float, float]:
  results = [image_rates.evaluate_image(model, p) for p in photos.values()]
  return (float(np.mean([r['bpp_real'] for r in results])),
          float(np.mean([r['psnr_db'] for r in results])))


_MODELS = flags.DEFINE_list('models', ['small-beta100', 'small-beta10'], 'Names or paths.')
_PHOTOS = flags.DEFINE_list('photos', [], 'Held-out photos (downscaled to long side 512).')
_BITS = flags.DEFINE_list('bits', ['8', '7', '6'], 'Grid sizes to try.')
_MIN_SIZE = flags.DEFINE_integer('min_size', 4096, 'Smaller leaves stay float16.')


def main(argv):
  del argv
  if not _PHOTOS.value:
    raise app.UsageError('give --photos (held-out photos, comma-separated)')
  photos = {os.path.basename(p): image_io.downscale_long_side(data.load_rgb(p), 512)
            for p in _PHOTOS.value}
  print('| model | weights | bytes | zlib bytes | bpp | PSNR dB | d bpp | d PSNR |')
  print('|---|---|---:|---:|---:|---:|---:|---:|')
  for name in _MODELS.value:
    model = models.load_model(name)
    half = b''.join(np.asarray(a, np.float16).tobytes() for a in jax.tree.leaves(model.params))
    bpp0, psnr0 = held_out(model, photos)
    print(f'| {model.name} | float16 | {len(half)} | {len(zlib.compress(half, 9))} | '
          f'{bpp0:.4f} | {psnr0:.3f} | | |', flush=True)
    for bits in (int(b) for b in _BITS.value):
      params, blob = coarse(model.params, bits, _MIN_SIZE.value)
      bpp, psnr = held_out(models.Model(model.name, model.config, params), photos)
      print(f'| {model.name} | {bits}-bit grid | {len(blob)} | {len(zlib.compress(blob, 9))} | '
            f'{bpp:.4f} | {psnr:.3f} | {100 * (bpp / bpp0 - 1):+.2f}% | {psnr - psnr0:+.3f} |',
            flush=True)


if __name__ == '__main__':
  app.run(main)
