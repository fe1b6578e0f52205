"""Trains global mean-scale hyperpriors on a folder of photos, one per beta.

  python experiments/train_global.py --images=../shared/data/train_images \
      --workdir=runs/small --config=small --betas=500,100,30,10 --steps=20000

All betas train in one compiled step on the same batches. Resumes from
the Orbax checkpoints in --workdir; writes `models/<config>-beta<beta>.msgpack`
(+ `.json`) there at every save, `train_log.jsonl` and `eval_log.jsonl`.
"""

from __future__ import annotations

import logging as std_logging
import os

from absl import app, flags, logging

from iac_jax.codec import models
from iac_jax.training import data, trainer

_IMAGES = flags.DEFINE_string('images', '../shared/data/train_images',
                              'Folder(s) or glob(s) of PNG/JPEG photos, comma-separated.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and logs.',
                               required=True)
_CONFIG = flags.DEFINE_string('config', 'small', 'Model config name.')
_BETAS = flags.DEFINE_list('betas', ['100'], 'Rate weights, one model each: '
                           'loss = beta * bpp + MSE(255).')
_STEPS = flags.DEFINE_integer('steps', 20000, 'Total optimizer steps.')
_BATCH = flags.DEFINE_integer('batch_size', 8, 'Crops per step.')
_CROP = flags.DEFINE_integer('crop_size', 128, 'Crop side in pixels.')
_LR = flags.DEFINE_float('learning_rate', 2e-4, 'Initial Adam learning rate.')
_FINAL_LR = flags.DEFINE_float('final_learning_rate', 2e-5, 'Learning rate at the end '
                               '(cosine decay).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of initialization, crops and noise.')
_GRAD_CLIP = flags.DEFINE_float('grad_clip', 0.0, 'Clip each model\'s gradient norm at '
                                'grad_clip * beta (CompressAI\'s units; its trainer uses '
                                '1.0); 0 = no clipping.')
_HOLDOUT = flags.DEFINE_integer('holdout', 2, 'Last N images (sorted) kept out of training '
                                'and evaluated every --eval_every steps.')
_INIT_FROM = flags.DEFINE_string('init_from', None, 'Start every beta from this model '
                                 '(shipped name or .msgpack path) instead of random.')
_PRELOAD_MB = flags.DEFINE_integer('preload_mb', 1024, 'Decode all photos into memory up '
                                   'to this size; beyond it, decode them per batch.')
_LOG_EVERY = flags.DEFINE_integer('log_every', 100, 'Steps between progress lines.')
_SAVE_EVERY = flags.DEFINE_integer('save_every', 500, 'Steps between checkpoints.')
_EVAL_EVERY = flags.DEFINE_integer('eval_every', 2000, 'Steps between evaluations of the '
                                   'held-out images (0: never).')


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  std_logging.getLogger('absl').setLevel(std_logging.WARNING)  # Orbax's chatter
  log = std_logging.getLogger('train_global')
  paths = data.find_images(_IMAGES.value)
  if len(paths) <= _HOLDOUT.value:
    raise app.UsageError(f'found {len(paths)} images under {_IMAGES.value!r}')
  train_paths = paths[:len(paths) - _HOLDOUT.value]
  held_paths = paths[len(train_paths):]
  log.info('training on %d images, holding out %s', len(train_paths),
               [os.path.basename(p) for p in held_paths])
  try:
    betas = tuple(float(b) for b in _BETAS.value)
  except ValueError:
    raise app.UsageError(f'--betas must be numbers, got {_BETAS.value}') from None
  cfg = trainer.TrainConfig(
      config_name=_CONFIG.value, betas=betas, steps=_STEPS.value,
      batch_size=_BATCH.value, crop_size=_CROP.value, learning_rate=_LR.value,
      final_learning_rate=_FINAL_LR.value, seed=_SEED.value, log_every=_LOG_EVERY.value,
      save_every=_SAVE_EVERY.value, eval_every=_EVAL_EVERY.value,
      grad_clip=_GRAD_CLIP.value)
  metadata = {'data': f'{len(train_paths)} photos from {_IMAGES.value}'}
  init = None
  if _INIT_FROM.value:
    start = models.load_model(_INIT_FROM.value)
    if start.config.name != cfg.config_name:
      raise app.UsageError(f'--init_from model has config {start.config.name!r}, '
                           f'not {cfg.config_name!r}')
    init = start.params
    metadata['init_from'] = f'{start.name} ({start.metadata.get("steps")} steps)'
  held = {os.path.basename(p): data.load_rgb(p) for p in held_paths}
  images = data.load_images(train_paths, _PRELOAD_MB.value << 20)
  if images and isinstance(images[0], str):
    log.info('decoding photos on demand (more than --preload_mb=%d MB)', _PRELOAD_MB.value)
  trainer.train(cfg, images, _WORKDIR.value,
                 init=init, metadata=metadata, eval_images=held)


if __name__ == '__main__':
  app.run(main)
