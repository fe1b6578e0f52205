import json

import numpy as np

from iac_jax import data, training
from tests.conftest import smooth_image


def test_crop_stream_yields_batches_in_range():
  images = [smooth_image(50, 40), smooth_image(200, 300, seed=1)]
  with data.CropStream(images, batch_size=3, crop_size=64, seed=0) as stream:
    batch = next(iter(stream))
  assert batch.shape == (3, 64, 64, 3) and batch.dtype == np.float32
  assert 0.0 <= batch.min() and batch.max() <= 1.0


def test_training_lowers_the_loss_and_resumes(tmp_path):
  images = [smooth_image(96, 96, seed=s) for s in range(4)]
  cfg = training.TrainConfig(config_name='tiny', beta=10.0, steps=60, learning_rate=3e-3,
                             final_learning_rate=1e-3, log_every=20, save_every=30)
  with data.CropStream(images, 4, 64, seed=0) as stream:
    training.train(cfg, stream, str(tmp_path))
  log = [json.loads(line) for line in (tmp_path / 'train_log.jsonl').read_text().splitlines()]
  assert [r['step'] for r in log] == [20, 40, 60]
  assert log[-1]['loss'] < log[0]['loss']
  # Asking for more steps resumes from the saved state instead of starting over.
  longer = training.TrainConfig(**{**cfg.__dict__, 'steps': 80})
  with data.CropStream(images, 4, 64, seed=0) as stream:
    training.train(longer, stream, str(tmp_path))
  log = [json.loads(line) for line in (tmp_path / 'train_log.jsonl').read_text().splitlines()]
  assert [r['step'] for r in log] == [20, 40, 60, 80]
