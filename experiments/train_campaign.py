"""One run of the global-model training campaign (`make train`).

  python experiments/train_campaign.py --images=../shared/data/train_images --hours=2

Continues from the work directory's constant-rate checkpoint or, on a fresh
machine, from the shipped weights; trains every beta at a constant learning rate
until --hours is nearly spent, then writes a cosine-decayed snapshot of each model
into --weights_dir (the package's shipped weights by default) and appends its
held-out evaluations to --curve. See `iac_jax/training/campaign.py`.
"""

from __future__ import annotations

import logging as std_logging
import os

from absl import app, flags, logging

from iac_jax.codec import models
from iac_jax.training import campaign, data

_IMAGES = flags.DEFINE_string('images', '../shared/data/train_images',
                              'Folder(s) or glob(s) of PNG/JPEG photos, comma-separated.')
_WORKDIR = flags.DEFINE_string('workdir', 'runs/campaign', 'Checkpoints of the '
                               'constant-rate branch and of each snapshot.')
_WEIGHTS = flags.DEFINE_string('weights_dir', models.WEIGHTS_DIR,
                               'Where the starting models are read and snapshots written.')
_CURVE = flags.DEFINE_string('curve', 'results/global_models/campaign_log.jsonl',
                             'Held-out evaluations are appended here ("" = none).')
_CONFIG = flags.DEFINE_string('config', 'small', 'Model config name.')
_BETAS = flags.DEFINE_list('betas', ['500', '100', '30', '10'], 'Rate weights.')
_HOURS = flags.DEFINE_float('hours', 1.0, 'Wall-clock budget, snapshot included.')
_SNAPSHOT = flags.DEFINE_bool('snapshot', True, 'End with a snapshot written to '
                              '--weights_dir; --nosnapshot only advances the branch.')
_MAX_STEPS = flags.DEFINE_integer('max_steps', 0, 'Cap on constant-rate steps (0: none).')
_DECAY = flags.DEFINE_integer('decay_steps', 500, 'Steps of the snapshot\'s decay.')
_LR = flags.DEFINE_float('learning_rate', 1e-4, 'Constant Adam learning rate.')
_FINAL_LR = flags.DEFINE_float('final_learning_rate', 1e-5, 'End of the snapshot decay.')
_WARMUP = flags.DEFINE_integer('warmup_steps', 200, 'Warm-up steps after a restart.')
_BATCH = flags.DEFINE_integer('batch_size', 8, 'Crops per step.')
_CROP = flags.DEFINE_integer('crop_size', 128, 'Crop side in pixels.')
_MIN_SCALE = flags.DEFINE_float('min_scale', 0.4, 'Smallest random downscaling before '
                                'the crop (1: none).')
_HOLDOUT = flags.DEFINE_integer('holdout', 2, 'Last N images (sorted) kept out of training.')
_EVAL_EVERY = flags.DEFINE_integer('eval_every', 1000, 'Steps between held-out evaluations.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of crops and noise.')
_EXPORT = flags.DEFINE_string('export_branch', '', 'Only write the --workdir branch\'s '
                              'current (undecayed) weights as models into this folder and '
                              'exit: the start of a campaign elsewhere (make accelerator-pack).')


def _betas() -> tuple[float, ...]:
  try:
    return tuple(float(b) for b in _BETAS.value)
  except ValueError:
    raise app.UsageError(f'--betas must be numbers, got {_BETAS.value}') from None


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  std_logging.getLogger('absl').setLevel(std_logging.WARNING)
  if _EXPORT.value:
    cfg = campaign.CampaignConfig(config_name=_CONFIG.value, betas=_betas())
    written = campaign.export_branch(cfg, _WORKDIR.value, _EXPORT.value, _WEIGHTS.value)
    if not written:
      raise app.UsageError(f'no constant-rate branch in {_WORKDIR.value} to export')
    return
  try:
    train_paths, held_paths = data.held_out_split(_IMAGES.value, _HOLDOUT.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  cfg = campaign.CampaignConfig(
      config_name=_CONFIG.value, betas=_betas(), hours=_HOURS.value, snapshot=_SNAPSHOT.value,
      max_steps=_MAX_STEPS.value,
      decay_steps=_DECAY.value, learning_rate=_LR.value, final_learning_rate=_FINAL_LR.value,
      warmup_steps=_WARMUP.value, batch_size=_BATCH.value, crop_size=_CROP.value,
      min_scale=_MIN_SCALE.value, eval_every=_EVAL_EVERY.value, seed=_SEED.value)
  held = {os.path.basename(p): data.load_rgb(p) for p in held_paths}
  description = (f'{len(train_paths)} photos of {_IMAGES.value} (all but '
                 f'{", ".join(held)}), random {_CROP.value}x{_CROP.value} crops with flips '
                 f'after random downscaling to {_MIN_SCALE.value:g}-1x')
  if _CURVE.value:
    os.makedirs(os.path.dirname(os.path.abspath(_CURVE.value)), exist_ok=True)
  campaign.run(cfg, data.load_images(train_paths), _WORKDIR.value, _WEIGHTS.value,
               data_description=description, eval_images=held, curve_path=_CURVE.value or None)


if __name__ == '__main__':
  app.run(main)
