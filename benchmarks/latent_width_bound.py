"""What do M latent channels allow, before any training? A linear yardstick.

  .venv/bin/python benchmarks/latent_width_bound.py --images=../shared/data/train_images

The hyperprior's `y` has M channels at 1/16 of the resolution: M numbers for every
16x16 RGB block of 768 values. The simplest transform with that budget keeps the
first M principal components of 16x16 blocks (block PCA: linear, no overlap, no
quantization). This script fits it on blocks of the training photos (at full size and
at the campaign's smallest augmentation scale, 0.4) and prints the PSNR it
reconstructs the held-out photos with (downscaled to --long_side, as the campaign's
evaluation does; rounded to 8 bits; the part of each photo that whole blocks cover),
for the widths of the configs: `small` M=96, `paper` 192, `paper-hi` 320.

Compare with `transform_ceiling.py`'s unquantized g_s(g_a(x)): a trained
autoencoder, with its overlapping, nonlinear transforms, should beat the linear
yardstick of its own width; where it only matches it, the width is a likely limit.
"""

from __future__ import annotations

import os

import numpy as np
from absl import app, flags

from iac_jax.evaluation import metrics
from iac_jax.io import image_io
from iac_jax.training import data

_IMAGES = flags.DEFINE_string('images', None, 'Folder of the training photos.', required=True)
_HOLDOUT = flags.DEFINE_integer('holdout', 2, 'The last N photos (sorted) are held out, as '
                                'in the campaign.')
_LONG_SIDE = flags.DEFINE_integer('long_side', 512, 'Held-out photos are downscaled to this.')
_WIDTHS = flags.DEFINE_list('widths', ['48', '96', '192', '320'], 'Components kept (M).')
_PER_PHOTO = flags.DEFINE_integer('blocks_per_photo', 2000, 'Training blocks per photo '
                                  'and scale.')
_SEED = flags.DEFINE_integer('seed', 0, 'Which training blocks.')

BLOCK = 16


def whole_blocks(image: np.ndarray) -> np.ndarray:
  """The part of uint8[H, W, 3] that whole 16x16 blocks cover (top left)."""
  return image[:image.shape[0] // BLOCK * BLOCK, :image.shape[1] // BLOCK * BLOCK]


def blocks(image: np.ndarray) -> np.ndarray:
  """float64[K, 768]: the whole 16x16 blocks of uint8[H, W, 3], row-major."""
  x = whole_blocks(image).astype(np.float64)
  h, w, _ = x.shape
  return x.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, 3).transpose(0, 2, 1, 3, 4).reshape(
      -1, BLOCK * BLOCK * 3)


def unblock(rows: np.ndarray, h: int, w: int) -> np.ndarray:
  """The inverse of `blocks` for an image of whole blocks, rounded to uint8."""
  x = rows.reshape(h // BLOCK, w // BLOCK, BLOCK, BLOCK, 3).transpose(0, 2, 1, 3, 4)
  return np.clip(np.round(x.reshape(h, w, 3)), 0, 255).astype(np.uint8)


def fit_pca(train: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  """(mean float64[768], components float64[768, 768], strongest first)."""
  x = np.concatenate(train)
  mean = x.mean(0)
  _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
  return mean, vt


def reconstruct(image: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
  """`whole_blocks(image)` through the components, rounded to uint8."""
  h, w, _ = whole_blocks(image).shape
  centred = blocks(image) - mean
  return unblock(centred @ components.T @ components + mean, h, w)


def main(argv):
  del argv
  paths = data.find_images(_IMAGES.value)
  if len(paths) <= _HOLDOUT.value:
    raise app.UsageError(f'{len(paths)} photos under {_IMAGES.value!r}, {_HOLDOUT.value} '
                         'to hold out')
  train, held = paths[:-_HOLDOUT.value], paths[-_HOLDOUT.value:]
  rng = np.random.default_rng(_SEED.value)
  sample = []
  for path in train:
    photo = data.load_rgb(path)
    for scale in (1.0, 0.4):
      b = blocks(image_io.downscale_long_side(photo, round(max(photo.shape[:2]) * scale)))
      sample.append(b[rng.choice(len(b), min(len(b), _PER_PHOTO.value), replace=False)])
  mean, components = fit_pca(sample)
  widths = [int(w) for w in _WIDTHS.value]
  print(f'block PCA fitted on {sum(len(s) for s in sample)} blocks of {len(train)} photos')
  print('| photo | ' + ' | '.join(f'M={w}' for w in widths) + ' |')
  print('|---|' + '---:|' * len(widths))
  for path in held:
    image = image_io.downscale_long_side(data.load_rgb(path), _LONG_SIDE.value)
    psnrs = [metrics.psnr_db(whole_blocks(image), reconstruct(image, mean, components[:k]))
             for k in widths]
    print(f'| {os.path.basename(path)} | ' + ' | '.join(f'{p:.2f}' for p in psnrs) + ' |')


if __name__ == '__main__':
  app.run(main)
