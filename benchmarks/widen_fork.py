"""Does a wider latent lift a trained high-rate model?

  .venv/bin/python benchmarks/widen_fork.py --start=small-beta10 \
      --configs=small,small-m192,small-m320 --steps=1500

Forks `--start` into each of `--configs` (its own config: trained on as it is; a wider
M: grown with `training.latent_widening.widen_latents`, which computes the same model
at step 0) and trains each fork `--steps` at the start's beta (Adam afresh, 50 warm-up
steps, cosine from `--learning_rate` to 1e-5; the campaign's batch, crops and scale
augmentation; one seed for all, so the forks see the same crops). Then evaluates each
on the held-out photos as the campaign does (long side 512, real bitstreams): mean bpp,
PSNR, the loss beta * bpp + MSE(255), the share of `y`'s estimated bits in the new
channels, and the CPU seconds each fork trained. Needs ../shared/data (the campaign's
photos, the last two sorted held out).
"""

from __future__ import annotations

import json
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from iac_jax.codec import models
from iac_jax.codec.configs import get_config
from iac_jax.codec.entropy_models import gaussian
from iac_jax.codec.hyperprior import MeanScaleHyperprior
from iac_jax.codec.image_codec import pad_to_multiple
from iac_jax.evaluation import image_rates
from iac_jax.training import data, latent_widening, trainer

_START = flags.DEFINE_string('start', 'small-beta10', 'Model to fork (name or .msgpack).')
_CONFIGS = flags.DEFINE_list('configs', ['small', 'small-m192'], 'Config of each fork.')
_STEPS = flags.DEFINE_integer('steps', 1500, 'Steps of each fork.')
_LR = flags.DEFINE_float('learning_rate', 1e-4, 'Peak learning rate of the forks.')
_IMAGES = flags.DEFINE_string('images', '../shared/data/train_images', 'Training photos.')
_SEED = flags.DEFINE_integer('seed', 11, 'Crops, noise and the new channels.')


def _new_channel_share(model: models.Model, image: np.ndarray, old_m: int) -> float:
  """Share of y's estimated bits (rounded latents) in channels old_m and above."""
  x = jnp.asarray(pad_to_multiple(image)[None], jnp.float32) / 255.0
  module = MeanScaleHyperprior(model.config)
  apply = lambda method, *a: module.apply({'params': model.params}, *a, method=method)
  y, z = apply(module.analysis, x)
  mu, sigma = apply(module.hyper_synthesis, apply(module.quantize_z, z))
  per_channel = np.asarray(jnp.sum(gaussian.bits(y, mu, sigma), axis=(0, 1, 2)))
  return float(per_channel[old_m:].sum() / per_channel.sum())


def _held_out(model: models.Model, photos: list[np.ndarray], beta: float, old_m: int
              ) -> dict:
  share = float(np.mean([_new_channel_share(model, image, old_m) for image in photos]))
  return {**image_rates.mean_point(model, photos, beta),
          'new_channel_bit_share': round(share, 4)}


def main(argv):
  del argv
  images, photos = data.load_split(_IMAGES.value)
  start = models.load_model(_START.value)
  beta, old_m = models.default_beta(start), start.config.num_latents
  print(json.dumps({'model': 'start ' + start.name, 'config': start.config.name,
                    'beta': beta, 'steps': 0, **_held_out(start, photos, beta, old_m)}),
        flush=True)
  for name in _CONFIGS.value:
    config = get_config(name)
    init = start.params
    if config != start.config:
      init = latent_widening.widen_latents(start.params, start.config, config,
                                           jax.random.PRNGKey(_SEED.value))
      widened = models.Model(f'{start.name}-{name}', config, init)
      print(json.dumps({'model': f'widened {start.name}', 'config': name, 'steps': 0,
                        **_held_out(widened, photos, beta, old_m)}), flush=True)
    cfg = trainer.TrainConfig(
        config_name=name, betas=(beta,), steps=_STEPS.value, batch_size=4,
        crop_size=256, min_scale=0.4, learning_rate=_LR.value, final_learning_rate=1e-5,
        schedule='cosine', warmup_steps=50, seed=_SEED.value, save_every=1 << 30)
    began = time.process_time()
    with tempfile.TemporaryDirectory() as workdir:
      [model] = trainer.train(cfg, images, os.path.join(workdir, 'fork'), init=init)
    cpu_s = time.process_time() - began
    print(json.dumps({'model': f'fork of {start.name}', 'config': name, 'beta': beta,
                      'steps': _STEPS.value, 'cpu_seconds': round(cpu_s),
                      **_held_out(model, photos, beta, old_m)}), flush=True)


if __name__ == '__main__':
  app.run(main)
