"""Would the campaign learn faster at another learning rate? Fork a shipped model and see.

  .venv/bin/python benchmarks/lr_fork.py --model=small-beta10 --learning_rates=1e-4,3e-4,1e-3

Trains a copy of the shipped model for --steps at each peak learning rate (Adam
afresh, 50 warm-up steps, cosine to 1e-5; the campaign's batch, crops and scale
augmentation) and evaluates the held-out photos as the campaign does (long side 512,
real bitstreams), printing the mean bpp, PSNR, the transforms' unquantized PSNR and
the loss beta * bpp + MSE(255) of the means. Every fork sees the same crops and noise.
Needs ../shared/data (the campaign's photos, the last two sorted held out).
"""

from __future__ import annotations

import json
import os
import tempfile

import jax.numpy as jnp
import numpy as np
from absl import app, flags

from iac_jax.codec import image_codec, models
from iac_jax.evaluation import image_rates, metrics
from iac_jax.training import data, trainer

_MODEL = flags.DEFINE_string('model', 'small-beta10', 'Shipped model to fork.')
_LRS = flags.DEFINE_list('learning_rates', ['1e-4', '3e-4'], 'Peak learning rates.')
_STEPS = flags.DEFINE_integer('steps', 800, 'Steps per fork.')
_IMAGES = flags.DEFINE_string('images', '../shared/data/train_images', 'Training photos.')
_SEED = flags.DEFINE_integer('seed', 11, 'Crops and noise.')


def _evaluate(model: models.Model, photos: list[np.ndarray]) -> tuple[float, float, float]:
  """Mean held-out (bpp, PSNR) as the campaign measures them, and the unquantized PSNR."""
  rows = []
  for image in photos:
    h, w, _ = image.shape
    x = jnp.asarray(image_codec.pad_to_multiple(image)[None], jnp.float32) / 255.0
    y, _ = model.module.apply({'params': model.params}, x, method='analysis')
    x_hat = model.module.apply({'params': model.params}, y, method='synthesis')
    held_out = image_rates.evaluate_image(model, image)
    rows.append((held_out['bpp_real'], held_out['psnr_db'],
                 metrics.psnr_db(image, image_codec.to_uint8(x_hat, h, w))))
  return tuple(float(v) for v in np.mean(rows, axis=0))


def main(argv):
  del argv
  images, photos = data.load_split(_IMAGES.value)
  start = models.load_model(_MODEL.value)
  beta = models.default_beta(start)
  forks = [('shipped', start)]
  for lr in _LRS.value:
    cfg = trainer.TrainConfig(
        config_name=start.config.name, betas=(beta,), steps=_STEPS.value, batch_size=4,
        crop_size=256, min_scale=0.4, learning_rate=float(lr), final_learning_rate=1e-5,
        schedule='cosine', warmup_steps=50, seed=_SEED.value, save_every=1 << 30)
    with tempfile.TemporaryDirectory() as workdir:
      [model] = trainer.train(cfg, images, os.path.join(workdir, 'fork'), init=start.params)
    forks.append((f'lr {lr}, {_STEPS.value} steps', model))
  for label, model in forks:
    bpp, psnr, ceiling = _evaluate(model, photos)
    loss = beta * bpp + 255.0 ** 2 * 10 ** (-psnr / 10)
    print(json.dumps({'model': start.name, 'fork': label, 'bpp': round(bpp, 4),
                      'psnr_db': round(psnr, 2), 'unquantized_psnr_db': round(ceiling, 2),
                      'loss': round(loss, 2)}), flush=True)


if __name__ == '__main__':
  app.run(main)
