"""Should the campaign train one model and finetune the other rates from it?

  .venv/bin/python benchmarks/beta_fork.py \
      --start=runs/snapshot-weights-1205/small-beta100.msgpack \
      --reference=runs/snapshot-weights-1205/small-beta10.msgpack --steps=500,1500

The campaign trains all four betas in one step (0.75 s on this machine, huge pages),
while one model alone steps in 0.24 s. Training one model and finetuning the others
from it pays if a short finetune at another beta gets as good as the model trained at
that beta all along. This forks `--start` to the beta of `--reference` (or `--beta`)
for each of `--steps` (separate runs: Adam afresh, 50 warm-up steps, cosine from
`--learning_rate` to 1e-5; the campaign's batch, crops and scale augmentation) and
evaluates all of them on the held-out photos as the campaign does (long side 512, real
bitstreams), printing mean bpp, PSNR and the loss beta * bpp + MSE(255) at that beta,
and the seconds each fork trained. Needs ../shared/data (the campaign's photos, the
last two sorted held out).
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

_START = flags.DEFINE_string('start', 'small-beta100', 'Model to fork (name or .msgpack).')
_REFERENCE = flags.DEFINE_string('reference', 'small-beta10',
                                 'Model trained at the target beta all along.')
_BETA = flags.DEFINE_float('beta', 0.0, 'Target beta (0: the reference model\'s).')
_STEPS = flags.DEFINE_list('steps', ['500', '1500'], 'Steps of each fork.')
_LR = flags.DEFINE_float('learning_rate', 1e-4, 'Peak learning rate of the forks.')
_IMAGES = flags.DEFINE_string('images', '../shared/data/train_images', 'Training photos.')
_SEED = flags.DEFINE_integer('seed', 11, 'Crops and noise.')


def main(argv):
  del argv
  images, photos = data.load_split(_IMAGES.value)
  start, reference = models.load_model(_START.value), models.load_model(_REFERENCE.value)
  beta = _BETA.value or models.default_beta(reference)
  rows = [('start ' + start.name, start, 0, 0.0),
          ('reference ' + reference.name, reference, reference.metadata.get('steps'), None)]
  for steps in (int(s) for s in _STEPS.value):
    cfg = trainer.TrainConfig(
        config_name=start.config.name, betas=(beta,), steps=steps, batch_size=4,
        crop_size=256, min_scale=0.4, learning_rate=_LR.value, final_learning_rate=1e-5,
        schedule='cosine', warmup_steps=50, seed=_SEED.value, save_every=1 << 30)
    began = time.process_time()
    with tempfile.TemporaryDirectory() as workdir:
      [model] = trainer.train(cfg, images, os.path.join(workdir, 'fork'), init=start.params)
    rows.append((f'fork of {start.name}', model, steps, time.process_time() - began))
  for label, model, steps, cpu_s in rows:
    print(json.dumps({'model': label, 'beta': beta, 'steps': steps,
                      'cpu_seconds': None if cpu_s is None else round(cpu_s),
                      **image_rates.mean_point(model, photos, beta)}), flush=True)


if __name__ == '__main__':
  app.run(main)
