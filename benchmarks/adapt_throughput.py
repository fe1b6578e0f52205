"""Videos adapted per hour as the number of videos per device (K) grows.

  .venv/bin/python benchmarks/adapt_throughput.py [--per_device=1,2,4] [--steps=20] \
      [--frames=4] [--size=256] [--config=small]

Synthetic clips (smooth random frames) of one shape, method `full`, one batch of
K x devices videos per measurement after a compile-and-warm-up batch. Prints the
throughput and its ratio to K times the single-video throughput (the goal on an
accelerator: >= 0.8 until memory binds), and the device memory in use where the
backend reports it. Imports no TensorFlow, so it runs on accelerator machines
without the range coder.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from iac_jax.adaptation.batched import adapt_many, video_mesh
from iac_jax.adaptation.finetuning import AdaptationConfig
from iac_jax.codec import models

_PER_DEVICE = flags.DEFINE_list('per_device', ['1', '2', '4'], 'Values of K.')
_STEPS = flags.DEFINE_integer('steps', 20, 'Adaptation steps per video.')
_FRAMES = flags.DEFINE_integer('frames', 4, 'I-frames per clip.')
_SIZE = flags.DEFINE_integer('size', 256, 'Frame side (multiple of 64).')
_CROP = flags.DEFINE_integer('crop_size', 256, 'Crop side.')
_CONFIG = flags.DEFINE_string('config', 'small', 'Model config (random weights).')


def _memory_mb() -> float | None:
  stats = jax.local_devices()[0].memory_stats() if hasattr(jax.Device, 'memory_stats') else None
  if not stats:
    return None
  return stats.get('peak_bytes_in_use', stats.get('bytes_in_use', 0)) / 2**20


def main(argv):
  del argv
  model = models.init_model(_CONFIG.value)
  params = jax.tree.map(jnp.asarray, model.params)
  config = AdaptationConfig(method='full', steps=_STEPS.value, crop_size=_CROP.value)
  mesh = video_mesh()
  devices = mesh.devices.size
  rng = np.random.default_rng(0)
  print(f'backend={jax.default_backend()} devices={devices} jax={jax.__version__} '
        f'config={_CONFIG.value} frames={_FRAMES.value} size={_SIZE.value} '
        f'steps={_STEPS.value}', flush=True)
  base = None
  for k in (int(v) for v in _PER_DEVICE.value):
    n = k * devices
    videos = [jnp.asarray(rng.random((_FRAMES.value, _SIZE.value, _SIZE.value, 3)),
                          jnp.float32) for _ in range(n)]
    keys = [jax.random.PRNGKey(i) for i in range(n)]
    run = lambda v=videos, r=keys, k=k: adapt_many(params, v, r, config, model.config,
                                                   mesh=mesh, videos_per_device=k)
    jax.block_until_ready(jax.tree.leaves(run()[0].delta))  # compile + warm up
    start = time.perf_counter()
    jax.block_until_ready(jax.tree.leaves(run()[-1].delta))
    seconds = time.perf_counter() - start
    per_hour = n * 3600 / seconds
    base = base or per_hour / k
    memory = _memory_mb()
    print(f'K={k}: {n} videos in {seconds:.1f} s = {per_hour:.0f} videos/hour, '
          f'{per_hour / (k * base):.2f} of K x single'
          + (f', peak memory {memory:.0f} MiB' if memory is not None else ''), flush=True)


if __name__ == '__main__':
  app.run(main)
