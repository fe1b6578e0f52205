"""Trains a global mean-scale hyperprior on a folder of photos.

  python experiments/train_global.py --images=../shared/data/train_images \
      --workdir=/tmp/train_small --config=small --beta=100 --steps=20000

Resumes from --workdir; writes `model.msgpack` (+ `.json`) there at every save.
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from iac_jax import data, models, training
from iac_jax.configs import get_config

_IMAGES = flags.DEFINE_string('images', '../shared/data/train_images',
                              'Folder(s) or glob(s) of PNG/JPEG photos, comma-separated.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for state and logs.',
                               required=True)
_CONFIG = flags.DEFINE_string('config', 'small', 'Model config name.')
_BETA = flags.DEFINE_float('beta', 100.0, 'Rate weight: loss = beta * bpp + MSE(255).')
_STEPS = flags.DEFINE_integer('steps', 20000, 'Total optimizer steps.')
_BATCH = flags.DEFINE_integer('batch_size', 8, 'Crops per step.')
_CROP = flags.DEFINE_integer('crop_size', 128, 'Crop side in pixels.')
_LR = flags.DEFINE_float('learning_rate', 2e-4, 'Initial Adam learning rate.')
_FINAL_LR = flags.DEFINE_float('final_learning_rate', 2e-5, 'Learning rate at the end '
                               '(cosine decay).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of initialization, crops and noise.')
_HOLDOUT = flags.DEFINE_integer('holdout', 2, 'Last N images (sorted) kept out of training.')
_NAME = flags.DEFINE_string('name', None, 'Model name (default: <config>-beta<beta>).')


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  paths = data.find_images(_IMAGES.value)
  if len(paths) <= _HOLDOUT.value:
    raise app.UsageError(f'found {len(paths)} images under {_IMAGES.value!r}')
  train_paths = paths[:len(paths) - _HOLDOUT.value]
  logging.info('training on %d images, holding out %s', len(train_paths),
               [os.path.basename(p) for p in paths[len(train_paths):]])
  images = [data.load_rgb(p) for p in train_paths]
  cfg = training.TrainConfig(
      config_name=_CONFIG.value, beta=_BETA.value, steps=_STEPS.value,
      learning_rate=_LR.value, final_learning_rate=_FINAL_LR.value, seed=_SEED.value)
  name = _NAME.value or f'{cfg.config_name}-beta{cfg.beta:g}'

  def save(params, step):
    meta = {'beta': cfg.beta, 'steps': step, 'batch_size': _BATCH.value,
            'crop_size': _CROP.value, 'data': f'{len(train_paths)} photos from '
            f'{_IMAGES.value}', 'learning_rate': cfg.learning_rate}
    models.save_model(models.Model(name, get_config(cfg.config_name), params, meta),
                      os.path.join(_WORKDIR.value, 'model.msgpack'))

  with data.CropStream(images, _BATCH.value, _CROP.value, _SEED.value) as stream:
    training.train(cfg, stream, _WORKDIR.value, on_save=save)


if __name__ == '__main__':
  app.run(main)
