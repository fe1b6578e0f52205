"""Time one adaptation step as a plain jitted function and inside `lax.scan`.

  .venv/bin/python benchmarks/adapt_step.py [--config=small] [--frames=2] [--size=192]

Prints the median seconds per step of each. On XLA's CPU backend the scanned step
is far slower, which is why `finetuning.adapt` runs one jitted step per call on CPU.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from iac_jax.adaptation import finetuning
from iac_jax.codec import models
from iac_jax.codec.hyperprior import DECODER_SIDE
from iac_jax.optim import host_memory

_CONFIG = flags.DEFINE_string('config', 'small', 'Model config (random weights).')
_FRAMES = flags.DEFINE_integer('frames', 2, 'Frames per step.')
_SIZE = flags.DEFINE_integer('size', 192, 'Frame side (multiple of 64).')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed calls per variant.')


def _time(fn, *args):
  jax.block_until_ready(fn(*args))  # compile
  times = []
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv):
  del argv
  model = models.init_model(_CONFIG.value)
  params = jax.tree.map(jnp.asarray, model.params)
  frames = jnp.asarray(np.random.default_rng(0).random(
      (_FRAMES.value, _SIZE.value, _SIZE.value, 3)), jnp.float32)
  config = finetuning.AdaptationConfig(method='full', steps=2,
                                       frames_per_step=_FRAMES.value)
  theta = {k: params[k] for k in DECODER_SIDE}
  carry = finetuning.initial_carry(params, config)
  pixels = jnp.float32(_FRAMES.value * _SIZE.value**2)
  kwargs = {'model_config': model.config, 'config': config}
  one = jax.jit(lambda c, r: finetuning.run_steps(c, theta, frames, r[:1], pixels, **kwargs))
  scan2 = jax.jit(lambda c, r: finetuning.run_steps(c, theta, frames, r, pixels, **kwargs))
  rngs = jax.random.split(jax.random.PRNGKey(0), 2)
  plain = _time(one, carry, rngs)
  scanned = _time(scan2, carry, rngs) / 2
  print(f'backend={jax.default_backend()} jax={jax.__version__} config={_CONFIG.value} '
        f'frames={_FRAMES.value} size={_SIZE.value} huge_pages={host_memory.tunable_set()}')
  print(f'plain jitted step: {plain:.3f} s/step')
  print(f'lax.scan step:     {scanned:.3f} s/step')
  print(f'scan / plain:      {scanned / plain:.1f}x')


if __name__ == '__main__':
  app.run(main)
