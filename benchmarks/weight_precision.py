"""What coarser weights cost: model-file bytes against held-out RD.

  .venv/bin/python benchmarks/weight_precision.py --models=small-beta100,small-beta10 \
      --photos=../shared/data/train_images/skimage_retina.png,../shared/data/train_images/skimage_rocket.png

Git stores each snapshot's weight files zlib-compressed and cannot delta-compress one
snapshot against the last, so a file's zlib size is what every snapshot adds to the
history. For each model this rounds the weights to float16 and, for each --bits, puts
every leaf of at least --min_size values on its per-output-channel grid
(`iac_jax.codec.weight_grid`, what ships at SHIPPED_BITS), the rest float16; it prints
the model file's bytes raw and after zlib and the held-out bpp and PSNR (photos at long
side 512, real bitstreams), the grids against float16. Results: benchmarks/README.md.
"""

from __future__ import annotations

import os
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE)]

import numpy as np
from absl import app, flags

from iac_jax.codec import models, weight_grid
from iac_jax.evaluation import image_rates
from iac_jax.io import image_io
from iac_jax.training import data


def file_bytes(model: models.Model) -> tuple[int, int]:
  """The model file's size, raw and after zlib (what git stores)."""
  raw = models.params_bytes(model.params)
  return len(raw), len(zlib.compress(raw))


def held_out(model: models.Model, photos: dict) -> tuple[float, float]:
  results = [image_rates.evaluate_image(model, p) for p in photos.values()]
  return (float(np.mean([r['bpp_real'] for r in results])),
          float(np.mean([r['psnr_db'] for r in results])))


_MODELS = flags.DEFINE_list('models', ['small-beta100', 'small-beta10'], 'Names or paths.')
_PHOTOS = flags.DEFINE_list('photos', [], 'Held-out photos (downscaled to long side 512).')
_BITS = flags.DEFINE_list('bits', ['10', '9', '8'], 'Grid sizes to try.')
_MIN_SIZE = flags.DEFINE_integer('min_size', weight_grid.MIN_GRID_SIZE,
                                 'Smaller leaves stay float16.')


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
    half = models.Model(model.name, model.config, weight_grid.half_precision(model.params))
    bpp0, psnr0 = held_out(half, photos)
    raw, packed = file_bytes(half)
    print(f'| {model.name} | float16 | {raw} | {packed} | {bpp0:.4f} | {psnr0:.3f} | | |',
          flush=True)
    for bits in (int(b) for b in _BITS.value):
      coarse = models.Model(model.name, model.config,
                            weight_grid.grid_precision(model.params, bits, _MIN_SIZE.value))
      bpp, psnr = held_out(coarse, photos)
      raw, packed = file_bytes(coarse)
      print(f'| {model.name} | {bits}-bit grid | {raw} | {packed} | {bpp:.4f} | {psnr:.3f} | '
            f'{100 * (bpp / bpp0 - 1):+.2f}% | {psnr - psnr0:+.3f} |', flush=True)


if __name__ == '__main__':
  app.run(main)
