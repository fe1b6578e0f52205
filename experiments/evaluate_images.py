"""Rate (training estimate, evaluation estimate, real bitstream) and PSNR on photos.

  python experiments/evaluate_images.py --model=small-beta100 \
      --images=../shared/data/train_images/skimage_r*.png
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from iac_jax.codec import models
from iac_jax.evaluation import image_rates
from iac_jax.training import data

_MODEL = flags.DEFINE_string('model', models.DEFAULT_MODEL, 'Model name or .msgpack path.')
_IMAGES = flags.DEFINE_string('images', None, 'Glob(s) of images, comma-separated.',
                              required=True)


def main(argv):
  del argv
  model = models.load_model(_MODEL.value)
  paths = data.find_images(_IMAGES.value)
  if not paths:
    raise app.UsageError(f'no images match {_IMAGES.value!r}')
  for path in paths:
    row = image_rates.evaluate_image(model, data.load_rgb(path))
    print(json.dumps({'image': os.path.basename(path), 'model': model.name,
                      **{k: round(v, 4) if isinstance(v, float) else v
                         for k, v in row.items()}}), flush=True)


if __name__ == '__main__':
  app.run(main)
