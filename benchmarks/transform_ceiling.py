"""How much of a model's distortion is quantization, and how much the transforms?

  .venv/bin/python benchmarks/transform_ceiling.py \
      --images=../shared/data/train_images/skimage_retina.png,../shared/data/train_images/skimage_rocket.png

For each model and photo (downscaled to --long_side, as the campaign's held-out
evaluation does) prints three PSNRs of the 8-bit reconstruction:
- `unquantized`: g_s(g_a(x)), no rounding at all: the ceiling the transforms allow;
- `coded`: the codec's own reconstruction (y rounded around the predicted means);
- `round(y)`: g_s(round(y)), the means ignored;
with the coded rate (real bitstream) and the share of nonzero y integers. A model whose
coded PSNR sits just below its ceiling is limited by its transforms, not its rate.
"""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
from absl import app, flags

from iac_jax.codec import image_codec, models
from iac_jax.evaluation import metrics
from iac_jax.io import image_io
from iac_jax.training import data

_MODELS = flags.DEFINE_list('models', ['small-beta500', 'small-beta100', 'small-beta30',
                                       'small-beta10'], 'Model names or paths.')
_IMAGES = flags.DEFINE_list('images', None, 'Photos (held out from training).', required=True)
_LONG_SIDE = flags.DEFINE_integer('long_side', 512, 'Photos are downscaled to this long side.')


def main(argv):
  del argv
  photos = {os.path.basename(p): image_io.downscale_long_side(data.load_rgb(p), _LONG_SIDE.value)
            for p in _IMAGES.value}
  print('| model | photo | bpp | unquantized | coded | round(y) | nonzero y |')
  print('|---|---|---:|---:|---:|---:|---:|')
  for name in _MODELS.value:
    model = models.load_model(name)
    for photo, image in photos.items():
      h, w, _ = image.shape
      x = jnp.asarray(image_codec.pad_to_multiple(image)[None], jnp.float32) / 255.0
      y, _ = model.module.apply({'params': model.params}, x, method='analysis')
      synthesis = lambda y_hat, model=model, h=h, w=w: image_codec.to_uint8(
          model.module.apply({'params': model.params}, y_hat, method='synthesis'), h, w)
      symbols = image_codec.frame_symbols(model, image)
      bpp = metrics.bpp(len(image_codec.encode_image(model, image)), h * w)
      print(f'| {model.name} | {photo} | {bpp:.4f} | {metrics.psnr_db(image, synthesis(y)):.2f} | '
            f'{metrics.psnr_db(image, symbols.reconstruction):.2f} | '
            f'{metrics.psnr_db(image, synthesis(jnp.round(y))):.2f} | '
            f'{np.mean(symbols.y_int != 0):.3f} |', flush=True)


if __name__ == '__main__':
  app.run(main)
