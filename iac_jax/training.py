"""Training of the global model: a jitted pure step and a resumable loop.

The loop writes its state (parameters, optimizer state, step) atomically every
`save_every` steps, resumes from it, and logs progress with steps/s and ETA.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from iac_jax import atomic_io
from iac_jax.configs import get_config
from iac_jax.hyperprior import MeanScaleHyperprior, init_params
from iac_jax.losses import rate_distortion

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  config_name: str = 'small'
  beta: float = 100.0
  steps: int = 10000
  learning_rate: float = 2e-4
  final_learning_rate: float = 2e-5
  seed: int = 0
  log_every: int = 100
  save_every: int = 500


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
  schedule = optax.cosine_decay_schedule(
      cfg.learning_rate, cfg.steps, alpha=cfg.final_learning_rate / cfg.learning_rate)
  # A step with a non-finite loss or gradient is skipped instead of poisoning Adam.
  return optax.apply_if_finite(optax.adam(schedule), max_consecutive_errors=20)


def train_step(state: dict, batch: jax.Array, rng: jax.Array, *,
               model: MeanScaleHyperprior, optimizer: optax.GradientTransformation,
               beta: float) -> tuple[dict, dict]:
  """One optimizer step on `rate_distortion`; state = {params, opt_state, step}."""
  grad_fn = jax.value_and_grad(rate_distortion, has_aux=True)
  (_, metrics), grads = grad_fn(state['params'], model, batch, rng, beta)
  updates, opt_state = optimizer.update(grads, state['opt_state'], state['params'])
  params = optax.apply_updates(state['params'], updates)
  return {'params': params, 'opt_state': opt_state, 'step': state['step'] + 1}, metrics


def _load_state(path: str, template: dict) -> dict | None:
  if not os.path.exists(path):
    return None
  with open(path, 'rb') as f:
    return serialization.from_bytes(template, f.read())


def train(cfg: TrainConfig, batches: Iterable[np.ndarray], workdir: str,
          on_save: Callable[[dict, int], None] | None = None) -> dict:
  """Trains (or resumes) in `workdir`; returns the final parameters."""
  config = get_config(cfg.config_name)
  model = MeanScaleHyperprior(config)
  optimizer = make_optimizer(cfg)
  rng = jax.random.PRNGKey(cfg.seed)
  params = init_params(config, rng)
  state = {'params': params, 'opt_state': optimizer.init(params),
           'step': jnp.zeros((), jnp.int32)}
  os.makedirs(workdir, exist_ok=True)
  state_path = os.path.join(workdir, 'state.msgpack')
  restored = _load_state(state_path, state)
  if restored is not None:
    state = restored
    log.info('resumed from %s at step %d', state_path, int(state['step']))
  step_fn = jax.jit(functools.partial(
      train_step, model=model, optimizer=optimizer, beta=cfg.beta), donate_argnums=0)

  history_path = os.path.join(workdir, 'train_log.jsonl')
  start_step = int(state['step'])
  t0, window = time.time(), []
  for step, batch in zip(range(start_step, cfg.steps), batches):
    state, metrics = step_fn(state, batch, jax.random.fold_in(rng, step))
    window.append(metrics)
    done = step + 1
    if done % cfg.log_every == 0 or done == cfg.steps:
      mean = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
      window = []
      rate = (done - start_step) / (time.time() - t0)
      eta_min = (cfg.steps - done) / max(rate, 1e-9) / 60
      log.info('step %d/%d  %.2f steps/s  ETA %.1f min  loss %.1f  bpp %.4f  '
               'psnr %.2f dB', done, cfg.steps, rate, eta_min, mean['loss'],
               mean['bpp'], mean['psnr_db'])
      with open(history_path, 'a') as f:
        f.write(json.dumps({'step': done, **mean}) + '\n')
    if done % cfg.save_every == 0 or done == cfg.steps:
      atomic_io.write_bytes(state_path, serialization.to_bytes(state))
      if on_save is not None:
        on_save(state['params'], done)
  return state['params']
