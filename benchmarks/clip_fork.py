"""Would clipping the gradient's norm help the high rates? Fork a shipped model and see.

  .venv/bin/python benchmarks/clip_fork.py --model=small-beta10 --grad_clips=0,1 --steps=1500

Trains a copy of `--model` for `--steps` at each of `--grad_clips` (the norm is clipped
at clip * beta, CompressAI's units: its example trainer clips at 1.0; 0 = no clipping)
with Adam afresh, 50 warm-up steps and cosine from 1e-4 to 1e-5, the campaign's batch,
crops and scale augmentation, every fork on the same crops and noise (seed 11: the
forks of `beta_fork.py` and `widen_fork.py` see the same ones). Evaluates each on the
held-out photos as the campaign does (long side 512, real bitstreams) and prints the
mean bpp, PSNR, the loss beta * bpp + MSE(255), the share of steps that were clipped
and the largest gradient norm seen (CompressAI's units). Needs ../shared/data (the
campaign's photos, the last two sorted held out).
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from absl import app, flags

from iac_jax.codec import models
from iac_jax.evaluation import image_rates
from iac_jax.training import data, trainer

_MODEL = flags.DEFINE_string('model', 'small-beta10', 'Model to fork (name or .msgpack).')
_CLIPS = flags.DEFINE_list('grad_clips', ['0', '1'], 'Clip levels (CompressAI units).')
_STEPS = flags.DEFINE_integer('steps', 1500, 'Steps of each fork.')
_IMAGES = flags.DEFINE_string('images', '../shared/data/train_images', 'Training photos.')
_SEED = flags.DEFINE_integer('seed', 11, 'Crops and noise.')


def main(argv):
  del argv
  images, photos = data.load_split(_IMAGES.value)
  start = models.load_model(_MODEL.value)
  beta = models.default_beta(start)
  print(json.dumps({'model': start.name, 'fork': 'start', 'beta': beta,
                    **image_rates.mean_point(start, photos, beta)}), flush=True)
  for clip in (float(c) for c in _CLIPS.value):
    cfg = trainer.TrainConfig(
        config_name=start.config.name, betas=(beta,), steps=_STEPS.value, batch_size=4,
        crop_size=256, min_scale=0.4, learning_rate=1e-4, final_learning_rate=1e-5,
        schedule='cosine', warmup_steps=50, seed=_SEED.value, save_every=1 << 30,
        log_every=10, grad_clip=clip)
    began = time.process_time()
    with tempfile.TemporaryDirectory() as workdir:
      [model] = trainer.train(cfg, images, os.path.join(workdir, 'fork'), init=start.params)
      with open(os.path.join(workdir, 'fork', 'train_log.jsonl')) as f:
        window_max = [json.loads(line)['grad_norm_max'] / beta for line in f]
    print(json.dumps({
        'model': start.name, 'fork': f'grad_clip {clip:g}, {_STEPS.value} steps',
        'cpu_seconds': round(time.process_time() - began),
        # Of the 10-step windows, the share whose largest norm was above the clip.
        'windows_clipped': round(sum(n > clip for n in window_max) / len(window_max), 3)
                           if clip else None,
        'max_grad_norm': round(max(window_max), 2),
        **image_rates.mean_point(model, photos, beta)}), flush=True)


if __name__ == '__main__':
  app.run(main)
