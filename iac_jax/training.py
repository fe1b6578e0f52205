"""Training of global models: one jitted step trains one model per beta, vmapped.

The parameters (and optimizer states) of the models for several rate weights
`betas` are stacked along a leading axis; `train_step` maps the single-model step
over that axis, so all rate points train in one compiled program on the same
batches. The loop checkpoints with Orbax, resumes after an interruption (batches
and noise depend only on the seed and the step, so a resumed run equals an
uninterrupted one), logs progress with steps/s and ETA, evaluates held-out
images, and writes one model file per beta.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from iac_jax import checkpointing, data, evaluation, models
from iac_jax.configs import get_config
from iac_jax.hyperprior import MeanScaleHyperprior, init_params
from iac_jax.losses import rate_distortion

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """What to train and how.

  Attributes:
    config_name: the architecture (`configs.CONFIGS`).
    betas: one model per rate weight; loss = beta * bpp + MSE(255).
    steps: total optimizer steps (a resumed run continues up to this count).
    batch_size, crop_size: random crops per step and their side.
    learning_rate, final_learning_rate: cosine decay from the first to the second.
    seed: initialization, crops and noise.
    log_every, save_every, eval_every: intervals in steps (eval 0 = never).
  """

  config_name: str = 'small'
  betas: tuple[float, ...] = (100.0,)
  steps: int = 10000
  batch_size: int = 8
  crop_size: int = 128
  learning_rate: float = 2e-4
  final_learning_rate: float = 2e-5
  seed: int = 0
  log_every: int = 100
  save_every: int = 500
  eval_every: int = 0

  def model_names(self) -> list[str]:
    return [f'{self.config_name}-beta{b:g}' for b in self.betas]


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
  schedule = optax.cosine_decay_schedule(
      cfg.learning_rate, cfg.steps, alpha=cfg.final_learning_rate / cfg.learning_rate)
  # A step with a non-finite loss or gradient is skipped instead of poisoning Adam.
  return optax.apply_if_finite(optax.adam(schedule), max_consecutive_errors=20)


def single_step(params: Any, opt_state: Any, batch: jax.Array, rng: jax.Array,
                beta: jax.Array, *, model: MeanScaleHyperprior,
                optimizer: optax.GradientTransformation) -> tuple[Any, Any, dict]:
  """One optimizer step of one model on `rate_distortion`."""
  grad_fn = jax.value_and_grad(rate_distortion, has_aux=True)
  (_, metrics), grads = grad_fn(params, model, batch, rng, beta)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, metrics


def train_step(state: dict, batch: jax.Array, rng: jax.Array, betas: jax.Array, *,
               model: MeanScaleHyperprior, optimizer: optax.GradientTransformation
               ) -> tuple[dict, dict]:
  """One step of every model; state = {params, opt_state (stacked per beta), step}.

  All models see the same batch and the same noise. Returns metrics stacked per beta.
  """
  step = functools.partial(single_step, model=model, optimizer=optimizer)
  params, opt_state, metrics = jax.vmap(step, in_axes=(0, 0, None, None, 0))(
      state['params'], state['opt_state'], batch, rng, betas)
  return dict(state, params=params, opt_state=opt_state, step=state['step'] + 1), metrics


def stack(trees: Sequence[Any]) -> Any:
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree: Any, index: int) -> Any:
  return jax.tree.map(lambda x: np.asarray(x[index]), tree)


def initial_state(cfg: TrainConfig, optimizer: optax.GradientTransformation,
                  init: Any | None = None) -> dict:
  """Fresh state: every beta starts from `init` (a parameter pytree) or random."""
  if init is None:
    init = init_params(get_config(cfg.config_name), jax.random.PRNGKey(cfg.seed))
  params = stack([init] * len(cfg.betas))
  return {'params': params, 'opt_state': jax.vmap(optimizer.init)(params),
          'step': jnp.zeros((), jnp.int32), 'seconds': jnp.zeros((), jnp.float32)}


def _checkpoint_dir(workdir: str) -> str:
  return os.path.join(workdir, 'checkpoints')


def restore(workdir: str, template: dict) -> dict | None:
  """The latest checkpoint in `workdir` shaped like `template`, or None."""
  return checkpointing.restore_latest(_checkpoint_dir(workdir), template)


def _append_jsonl(path: str, record: dict):
  with open(path, 'a') as f:
    f.write(json.dumps(record) + '\n')


def _has_range_coder() -> bool:
  return importlib.util.find_spec('tensorflow_compression_ops') is not None


def train(cfg: TrainConfig, images: Sequence[np.ndarray], workdir: str, *,
          init: Any | None = None, metadata: dict | None = None,
          eval_images: dict[str, np.ndarray] | None = None,
          on_save: Callable[[list[models.Model]], None] | None = None
          ) -> list[models.Model]:
  """Trains (or resumes) one model per beta in `workdir`; returns the final models.

  Writes `checkpoints/` (Orbax), `train_log.jsonl`, `eval_log.jsonl` and
  `models/<name>.msgpack` (+ `.json`) for each beta at every save.
  """
  config = get_config(cfg.config_name)
  module = MeanScaleHyperprior(config)
  optimizer = make_optimizer(cfg)
  os.makedirs(workdir, exist_ok=True)
  state = initial_state(cfg, optimizer, init)
  restored = restore(workdir, state)
  if restored is not None:
    state = restored
    log.info('resumed from %s at step %d', workdir, int(state['step']))
  betas = jnp.asarray(cfg.betas, jnp.float32)
  step_fn = jax.jit(functools.partial(train_step, model=module, optimizer=optimizer),
                    donate_argnums=0)
  rng = jax.random.PRNGKey(cfg.seed)
  names = cfg.model_names()
  meta = dict(metadata or {}, batch_size=cfg.batch_size, crop_size=cfg.crop_size,
              learning_rate=cfg.learning_rate, final_learning_rate=cfg.final_learning_rate,
              schedule_steps=cfg.steps, seed=cfg.seed)
  real_rates = _has_range_coder()

  def current_models() -> list[models.Model]:
    return [models.Model(name, config, unstack(state['params'], i),
                         dict(meta, beta=beta, steps=int(state['step']),
                              train_hours=round(float(state['seconds']) / 3600, 3)))
            for i, (name, beta) in enumerate(zip(names, cfg.betas))]

  def evaluate(done: int):
    for model in current_models():
      for image_name, image in (eval_images or {}).items():
        result = evaluation.evaluate_image(model, image, real=real_rates)
        _append_jsonl(os.path.join(workdir, 'eval_log.jsonl'),
                      {'step': done, 'model': model.name, 'image': image_name, **result})
        log.info('eval step %d %s %s: bpp %.4f (estimate %.4f) psnr %.2f dB', done,
                 model.name, image_name, result.get('bpp_real', float('nan')),
                 result['bpp_eval_estimate'], result['psnr_db'])

  start_step = int(state['step'])
  t0, window = time.time(), []
  last = time.time()
  with data.CropStream(images, cfg.batch_size, cfg.crop_size, cfg.seed,
                       start_step=start_step) as stream, \
       checkpointing.manager(_checkpoint_dir(workdir)) as manager:
    for step, batch in zip(range(start_step, cfg.steps), stream):
      state, metrics = step_fn(state, batch, jax.random.fold_in(rng, step), betas)
      window.append(metrics)
      done = step + 1
      if done % cfg.log_every == 0 or done == cfg.steps:
        now = time.time()
        state['seconds'] = state['seconds'] + (now - last)
        last = now
        mean = {k: np.mean([np.asarray(m[k]) for m in window], axis=0) for k in window[0]}
        window = []
        rate = (done - start_step) / (now - t0)
        eta_min = (cfg.steps - done) / max(rate, 1e-9) / 60
        for i, name in enumerate(names):
          record = {k: float(v[i]) for k, v in mean.items()}
          _append_jsonl(os.path.join(workdir, 'train_log.jsonl'),
                        {'step': done, 'model': name, **record})
          log.info('step %d/%d  %.2f steps/s  ETA %.1f min  %s  loss %.1f  bpp %.4f  '
                   'psnr %.2f dB', done, cfg.steps, rate, eta_min, name, record['loss'],
                   record['bpp'], record['psnr_db'])
      if done % cfg.save_every == 0 or done == cfg.steps:
        checkpointing.save(manager, done, state)
        trained = current_models()
        for model in trained:
          models.save_model(model, os.path.join(workdir, 'models', model.name + '.msgpack'))
        if on_save is not None:
          on_save(trained)
      if cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.steps):
        evaluate(done)
  return current_models()
