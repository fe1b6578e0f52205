"""Times one training step of iac_jax and of CompressAI's MeanScaleHyperprior.

  bash benchmarks/make_compressai_env.sh      # once: CPU torch 2.13 + CompressAI
  .venv/bin/python benchmarks/train_step.py [--sizes=64x96x8x128,...] [--rounds=5]
  PYTHONPATH=. .venv-accel/bin/python benchmarks/train_step.py --nocompressai ...  # jax 0.12

For each size NxMxBATCHxCROP, both libraries train the same architecture (forward,
rate-distortion loss, backward, Adam step) on the same batch shape. The CompressAI
step runs in a worker process in its own venv (`compressai_worker.py`); the two
alternate, A B A B, `--rounds` times with `--steps` timed steps each, so slow drifts
on a shared machine hit both. The output ends with one line per size:

  speedup N=64 M=96 batch=8 crop=128: 1.23

CompressAI's median step time divided by iac_jax's (above 1.0: iac_jax is faster).
`--upsampling=reference` times iac_jax with `lax.conv_transpose` in place of the
sub-pixel transposed convolution (the "before" of benchmarks/README.md).
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import subprocess
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from iac_jax.codec.configs import ModelConfig, get_config
from iac_jax.codec.hyperprior import MeanScaleHyperprior, init_params
from iac_jax.codec.layers import upsampling
from iac_jax.optim import host_memory
from iac_jax.training import trainer

_HERE = os.path.dirname(os.path.abspath(__file__))
_SIZES = flags.DEFINE_list('sizes', ['64x96x8x128', '64x96x8x256', '128x192x8x128',
                                     '128x192x8x256'], 'NxMxBATCHxCROP, one per entry.')
_ROUNDS = flags.DEFINE_integer('rounds', 5, 'A B rounds per size.')
_STEPS = flags.DEFINE_integer('steps', 2, 'Timed steps per library per round.')
_UPSAMPLING = flags.DEFINE_enum('upsampling', 'subpixel', ['subpixel', 'reference'],
                                'How iac_jax computes transposed convolutions.')
_COMPRESSAI = flags.DEFINE_bool(
    'compressai', True, 'Time CompressAI beside iac_jax; --nocompressai times iac_jax alone '
    '(for example to compare the venvs of two jax versions).')
_TORCH_PYTHON = flags.DEFINE_string(
    'torch_python', os.path.join(_HERE, '.compressai-venv', 'bin', 'python'),
    'Python of the CompressAI venv (made by make_compressai_env.sh).')


def _reference_upsampling(next_fun, args, kwargs, context):
  """Flax interceptor: SubpixelConvTranspose computed with lax.conv_transpose."""
  module = context.module
  if isinstance(module, upsampling.SubpixelConvTranspose) and context.method_name == '__call__':
    kernel = module.get_variable('params', 'kernel')
    bias = module.get_variable('params', 'bias')
    return upsampling.conv_transpose_reference(args[0], kernel) + bias
  return next_fun(*args, **kwargs)


def _jax_step(n: int, m: int, batch: int, crop: int):
  config = ModelConfig(**{**get_config('small').__dict__, 'name': f'bench-{n}-{m}',
                          'num_filters': n, 'num_latents': m})
  module = MeanScaleHyperprior(config)
  cfg = trainer.TrainConfig(steps=10**6, learning_rate=1e-4, final_learning_rate=1e-5)
  optimizer = trainer.make_optimizer(cfg)
  params = init_params(config, jax.random.PRNGKey(0))
  opt_state = optimizer.init(params)
  x = jnp.asarray(np.random.default_rng(0).random((batch, crop, crop, 3)), jnp.float32)
  step = functools.partial(trainer.single_step, model=module, optimizer=optimizer)
  if _UPSAMPLING.value == 'reference':
    def step(*args, _inner=step):  # pylint: disable=function-redefined
      with nn.intercept_methods(_reference_upsampling):
        return _inner(*args)
  step = jax.jit(step, donate_argnums=(0, 1))
  state = {'params': params, 'opt_state': opt_state, 'i': 0}

  def run():
    state['params'], state['opt_state'], metrics = step(
        state['params'], state['opt_state'], x, jax.random.PRNGKey(state['i']),
        jnp.float32(100.0), jnp.float32(1e-4))
    state['i'] += 1
    jax.block_until_ready(metrics)

  run()  # compile and warm up
  return run


def main(argv):
  del argv
  worker = None
  if _COMPRESSAI.value:
    if not os.path.exists(_TORCH_PYTHON.value):
      raise app.UsageError(f'{_TORCH_PYTHON.value} not found: run '
                           'bash benchmarks/make_compressai_env.sh first (or --nocompressai)')
    worker = subprocess.Popen([_TORCH_PYTHON.value, os.path.join(_HERE, 'compressai_worker.py')],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
  print(f'backend={jax.default_backend()} jax={jax.__version__} numpy={np.__version__} '
        f'cores={os.cpu_count()} '
        f'upsampling={_UPSAMPLING.value} rounds={_ROUNDS.value} steps={_STEPS.value} '
        f'huge_pages={host_memory.tunable_set()}',
        flush=True)
  lines = []
  try:
    for size in _SIZES.value:
      n, m, batch, crop = (int(v) for v in size.split('x'))
      request = json.dumps({'N': n, 'M': m, 'batch': batch, 'crop': crop,
                            'steps': _STEPS.value}) + '\n'
      run = _jax_step(n, m, batch, crop)
      jax_times, torch_times = [], []
      for r in range(_ROUNDS.value):
        for _ in range(_STEPS.value):
          start = time.perf_counter()
          run()
          jax_times.append(time.perf_counter() - start)
        line = f'  {size} round {r + 1}: iac_jax {statistics.median(jax_times[-_STEPS.value:]):.3f} s'
        if worker is not None:
          worker.stdin.write(request)
          worker.stdin.flush()
          torch_times += json.loads(worker.stdout.readline())['times']
          line += f'  compressai {statistics.median(torch_times[-_STEPS.value:]):.3f} s'
        print(line, flush=True)
      j = statistics.median(jax_times)
      if worker is None:
        lines.append(f'N={n} M={m} batch={batch} crop={crop}: iac_jax {j:.3f} s/step '
                     f'(min {min(jax_times):.3f})')
        continue
      t = statistics.median(torch_times)
      print(f'N={n} M={m} batch={batch} crop={crop}: iac_jax {j:.3f} s/step, '
            f'compressai {t:.3f} s/step', flush=True)
      lines.append(f'speedup N={n} M={m} batch={batch} crop={crop}: {t / j:.2f}')
  finally:
    if worker is not None:
      worker.stdin.close()
      worker.wait(timeout=60)
  print('\n'.join(lines))


if __name__ == '__main__':
  app.run(main)
