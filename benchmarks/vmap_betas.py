"""Does training K betas in one vmapped step cost more than K single-beta steps?

  .venv/bin/python benchmarks/vmap_betas.py --config=small --batch=4 --crop=256

Times `trainer.train_step` (the campaign's step) with 1 beta and with K betas on the
same batch, the K models vmapped and unrolled (`per_model`), median of --repeats
after a warm-up, and prints each ratio K-beta / (K x 1-beta): above 1, that layout
costs more than training the models one after the other.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from iac_jax.optim import host_memory
from iac_jax.training import trainer

_CONFIG = flags.DEFINE_string('config', 'small', 'Model config.')
_BATCH = flags.DEFINE_integer('batch', 4, 'Crops per step.')
_CROP = flags.DEFINE_integer('crop', 256, 'Crop side.')
_BETAS = flags.DEFINE_integer('betas', 4, 'Models in the vmapped step.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed steps.')


def _time(num_betas: int, per_model: str = 'vmap') -> float:
  cfg = trainer.TrainConfig(config_name=_CONFIG.value, betas=(100.0,) * num_betas)
  state = trainer.initial_state(cfg, trainer.make_optimizer(cfg))
  step = trainer._jitted_train_step(trainer.get_config(cfg.config_name), per_model)  # pylint: disable=protected-access
  batch = jnp.asarray(np.random.default_rng(0).random(
      (_BATCH.value, _CROP.value, _CROP.value, 3)), jnp.float32)
  betas = jnp.full((num_betas,), 100.0, jnp.float32)
  state, m = step(state, batch, jax.random.PRNGKey(0), betas, 1e-4)
  jax.block_until_ready(m)
  times = []
  for i in range(_REPEATS.value):
    t = time.perf_counter()
    state, m = step(state, batch, jax.random.PRNGKey(i + 1), betas, 1e-4)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def main(argv):
  del argv
  k, one = _BETAS.value, _time(1)
  line = (f'config={_CONFIG.value} batch={_BATCH.value} crop={_CROP.value} '
          f'backend={jax.default_backend()} huge_pages={host_memory.tunable_set()}: '
          f'1 beta {one:.3f} s/step')
  for per_model in trainer.PER_MODEL:
    many = _time(k, per_model)
    line += f'; {k} betas {per_model} {many:.3f} s/step = {many / (k * one):.2f} x ({k} x 1-beta)'
  print(line)


if __name__ == '__main__':
  app.run(main)
