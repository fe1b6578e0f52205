"""Training of global models: one jitted step trains one model per beta.

The parameters (and optimizer states) of the models for several rate weights
`betas` are stacked along a leading axis; `train_step` maps the single-model step
over that axis, so all rate points train in one compiled program on the same
batches. On a CPU the map is unrolled (one copy of the step per model): XLA's CPU
backend runs the grouped convolutions of a vmapped step 1.8x slower than the same
models one after the other (`benchmarks/vmap_betas.py`); elsewhere it is a vmap.
The loop checkpoints with Orbax, resumes after an interruption (batches
and noise depend only on the seed and the step, so a resumed run equals an
uninterrupted one), logs progress with steps/s and ETA, evaluates held-out
images, and writes one model file per beta.
"""

from __future__ import annotations

import dataclasses
import functools
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

from iac_jax.codec import models, range_coding
from iac_jax.codec.configs import get_config
from iac_jax.codec.entropy_models import factorized
from iac_jax.codec.hyperprior import MeanScaleHyperprior, init_params
from iac_jax.codec.losses import rate_distortion
from iac_jax.evaluation import image_rates
from iac_jax.optim import checkpointing, host_memory, nonfinite_steps
from iac_jax.training import data

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """What to train and how.

  Attributes:
    config_name: the architecture (`configs.CONFIGS`).
    betas: one model per rate weight; loss = beta * bpp + MSE(255).
    steps: total optimizer steps (a resumed run continues up to this count).
    batch_size, crop_size: random crops per step and their side.
    min_scale: scale augmentation: each photo is downscaled by a random factor in
      [min_scale, 1] (log-uniform) before the crop; 1 = no downscaling.
    learning_rate, final_learning_rate: see `schedule`.
    schedule: 'cosine' decays from learning_rate at step 0 to final_learning_rate at
      `steps`; 'constant' holds learning_rate (after the warm-up) and needs no total
      length; 'decay' is a constant run's snapshot: cosine from learning_rate at
      `decay_start` to final_learning_rate at `steps`.
    warmup_steps: linear warm-up of the learning rate from `warmup_start` on (Adam
      restarted from trained weights takes large first steps).
    seed: initialization, crops and noise.
    log_every, save_every, eval_every: intervals in steps (eval 0 = never).
    grad_clip: each model's gradient is scaled down to norm `grad_clip * beta` where
      it is longer (0 = never): the norm in CompressAI's units, where its example
      trainer clips at 1.0 (its loss, lambda * 255^2 * MSE + bpp, is ours / beta).
  """

  config_name: str = 'small'
  betas: tuple[float, ...] = (100.0,)
  steps: int = 10000
  batch_size: int = 8
  crop_size: int = 128
  min_scale: float = 1.0
  learning_rate: float = 2e-4
  final_learning_rate: float = 2e-5
  schedule: str = 'cosine'
  warmup_steps: int = 0
  warmup_start: int = 0
  decay_start: int = 0
  seed: int = 0
  log_every: int = 100
  save_every: int = 500
  eval_every: int = 0
  grad_clip: float = 0.0

  def model_names(self) -> list[str]:
    return [f'{self.config_name}-beta{b:g}' for b in self.betas]


def _cosine(start: float, end: float, frac: float) -> float:
  frac = min(max(frac, 0.0), 1.0)
  return end + (start - end) * 0.5 * (1.0 + float(np.cos(np.pi * frac)))


def learning_rate_at(cfg: TrainConfig, step: int) -> float:
  """The learning rate of optimizer step `step` (counted from 0) under `cfg`."""
  if cfg.schedule == 'cosine':
    lr = _cosine(cfg.learning_rate, cfg.final_learning_rate, step / max(cfg.steps, 1))
  elif cfg.schedule == 'constant':
    lr = cfg.learning_rate
  elif cfg.schedule == 'decay':
    span = max(cfg.steps - cfg.decay_start, 1)
    lr = _cosine(cfg.learning_rate, cfg.final_learning_rate, (step - cfg.decay_start) / span)
  else:
    raise ValueError(f'unknown schedule {cfg.schedule!r}')
  if cfg.warmup_steps and step < cfg.warmup_start + cfg.warmup_steps:
    lr *= max(step - cfg.warmup_start + 1, 1) / cfg.warmup_steps
  return lr


def make_optimizer(cfg: TrainConfig | None = None) -> optax.GradientTransformation:
  """Adam's direction; the step size is applied by `single_step`, so that the host
  owns the schedule (`learning_rate_at`) and a schedule change needs no new state."""
  del cfg
  # A step with a non-finite loss or gradient is skipped instead of poisoning Adam;
  # `train` stops after `nonfinite_steps.MAX_CONSECUTIVE` of them in a row.
  return nonfinite_steps.skip_nonfinite(optax.scale_by_adam())


def clip_by_norm(grads: Any, norm: jax.Array, max_norm: jax.Array) -> Any:
  """`grads` scaled to norm `max_norm` where `norm` (theirs) exceeds it; 0 = unclipped.

  A non-finite norm leaves `grads` as they are, for the optimizer to skip the step.
  """
  clip = (max_norm > 0) & (norm > max_norm) & jnp.isfinite(norm)
  factor = jnp.where(clip, max_norm / jnp.where(clip, norm, 1.0), 1.0)
  return jax.tree.map(lambda g: g * factor.astype(g.dtype), grads)


def single_step(params: Any, opt_state: Any, batch: jax.Array, rng: jax.Array,
                beta: jax.Array, learning_rate: jax.Array,
                grad_clip: jax.Array | float = 0.0, *, model: MeanScaleHyperprior,
                optimizer: optax.GradientTransformation) -> tuple[Any, Any, dict]:
  """One optimizer step of one model on `rate_distortion`, then fresh z medians.

  `grad_clip` > 0 clips the gradient's norm at `grad_clip * beta` (see TrainConfig).
  """
  grad_fn = jax.value_and_grad(rate_distortion, has_aux=True)
  (_, metrics), grads = grad_fn(params, model, batch, rng, beta)
  # The gradient's norm before clipping, logged to see loss spikes (grad_norm / beta
  # is the norm in CompressAI's units, lambda * 255^2 * MSE + bpp).
  norm = optax.tree.norm(grads)
  metrics = dict(metrics, grad_norm=norm)
  grads = clip_by_norm(grads, norm, grad_clip * beta)
  direction, opt_state = optimizer.update(grads, opt_state, params)
  params = jax.tree.map(lambda p, d: p - learning_rate * d, params, direction)
  params = dict(params, z_prior=factorized.with_fresh_medians(params['z_prior']))
  return params, opt_state, metrics


PER_MODEL = ('vmap', 'unroll')


def default_per_model() -> str:
  """How `train` maps the step over models on this backend: 'unroll' on a CPU
  (measured, see the module docstring), 'vmap' on accelerators (not measured)."""
  return 'unroll' if jax.default_backend() == 'cpu' else 'vmap'


def train_step(state: dict, batch: jax.Array, rng: jax.Array, betas: jax.Array,
               learning_rate: jax.Array | float = 1e-4,
               grad_clip: jax.Array | float = 0.0, *,
               model: MeanScaleHyperprior, optimizer: optax.GradientTransformation,
               per_model: str = 'vmap') -> tuple[dict, dict]:
  """One step of every model; state = {params, opt_state (stacked per beta), step}.

  All models see the same batch, the same noise and the same learning rate. Returns
  metrics stacked per beta. `per_model` ('vmap' or 'unroll', see `PER_MODEL`) only
  changes how the computation is laid out, not what it computes.
  """
  step = functools.partial(single_step, batch=batch, rng=rng,
                           learning_rate=jnp.asarray(learning_rate, jnp.float32),
                           grad_clip=jnp.asarray(grad_clip, jnp.float32),
                           model=model, optimizer=optimizer)
  if per_model == 'vmap':
    params, opt_state, metrics = jax.vmap(step)(state['params'], state['opt_state'],
                                                beta=betas)
  elif per_model == 'unroll':
    outs = [step(unstack_traced(state['params'], i), unstack_traced(state['opt_state'], i),
                 beta=betas[i]) for i in range(betas.shape[0])]
    params, opt_state, metrics = (stack([out[j] for out in outs]) for j in range(3))
  else:
    raise ValueError(f'per_model must be one of {PER_MODEL}, got {per_model!r}')
  return dict(state, params=params, opt_state=opt_state, step=state['step'] + 1), metrics


_OPTIMIZER = make_optimizer()


@functools.cache
def _jitted_train_step(config, per_model: str = 'vmap') -> Callable:
  """One compiled step per architecture, shared by every `train` call of a process
  (a campaign's constant phase and its decay), since the schedule is an argument."""
  return jax.jit(functools.partial(train_step, model=MeanScaleHyperprior(config),
                                   optimizer=_OPTIMIZER, per_model=per_model),
                 donate_argnums=0)


def stack(trees: Sequence[Any]) -> Any:
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree: Any, index: int) -> Any:
  return jax.tree.map(lambda x: np.asarray(x[index]), tree)


def unstack_traced(tree: Any, index: int) -> Any:
  return jax.tree.map(lambda x: x[index], tree)


def initial_state(cfg: TrainConfig, optimizer: optax.GradientTransformation,
                  init: Any | None = None) -> dict:
  """Fresh state: every beta starts from `init` (a parameter pytree) or random."""
  if init is None:
    init = init_params(get_config(cfg.config_name), jax.random.PRNGKey(cfg.seed))
  return state_from_params(stack([init] * len(cfg.betas)), optimizer)


def state_from_params(params: Any, optimizer: optax.GradientTransformation) -> dict:
  """A state at step 0 for parameters already stacked per beta (a fresh optimizer)."""
  return {'params': params, 'opt_state': jax.vmap(optimizer.init)(params),
          'step': jnp.zeros((), jnp.int32), 'seconds': jnp.zeros((), jnp.float32),
          'cpu_seconds': jnp.zeros((), jnp.float32)}


def _checkpoint_dir(workdir: str) -> str:
  return os.path.join(workdir, 'checkpoints')


def restore(workdir: str, template: dict) -> dict | None:
  """The latest checkpoint in `workdir` shaped like `template`, or None."""
  return checkpointing.restore_latest(_checkpoint_dir(workdir), template)


def latest_step(workdir: str) -> int | None:
  """The step of the latest checkpoint in `workdir`, or None."""
  return checkpointing.latest_step(_checkpoint_dir(workdir))


def _append_jsonl(path: str, record: dict):
  with open(path, 'a') as f:
    f.write(json.dumps(record) + '\n')


def _stop_if_diverged(opt_state: Any, names: Sequence[str], done: int) -> None:
  """Raises FloatingPointError once a model's last MAX_CONSECUTIVE steps were all
  skipped as non-finite. (Reading the count waits for the step; the next batch is
  already prepared by the CropStream's thread, so little is lost.)"""
  runs = nonfinite_steps.consecutive_nonfinite(opt_state)
  limit = nonfinite_steps.MAX_CONSECUTIVE
  diverged = [name for name, run in zip(names, runs, strict=True) if run >= limit]
  if diverged:
    raise FloatingPointError(
        f'training stopped at step {done}: the last {limit} steps of {", ".join(diverged)} '
        'had a non-finite loss or gradient and were skipped (a diverged model or broken '
        'data); resume from an earlier checkpoint with a smaller learning rate')


def train(cfg: TrainConfig, images: Sequence[np.ndarray], workdir: str, *,
          init: Any | None = None, metadata: dict | None = None,
          eval_images: dict[str, np.ndarray] | None = None,
          on_save: Callable[[list[models.Model]], None] | None = None,
          should_stop: Callable[[int], bool] | None = None,
          state: dict | None = None) -> list[models.Model]:
  """Trains (or resumes) one model per beta in `workdir`; returns the final models.

  Writes `checkpoints/` (Orbax), `train_log.jsonl`, `eval_log.jsonl` and
  `models/<name>.msgpack` (+ `.json`) for each beta at every save. `should_stop(step)`,
  asked after every logged step, ends the run early with a checkpoint (a time budget).
  `state` (from `initial_state` or a checkpoint) replaces the fresh or restored one.
  A step with a non-finite loss or gradient is skipped; `nonfinite_steps.MAX_CONSECUTIVE`
  in a row for any beta raise FloatingPointError (nothing more is saved).
  """
  config = get_config(cfg.config_name)
  optimizer = make_optimizer(cfg)
  os.makedirs(workdir, exist_ok=True)
  if state is None:
    state = initial_state(cfg, optimizer, init)
    restored = restore(workdir, state)
    if restored is not None:
      state = restored
      log.info('resumed from %s at step %d', workdir, int(state['step']))
  betas = jnp.asarray(cfg.betas, jnp.float32)
  step_fn = _jitted_train_step(config, default_per_model())
  if hint := host_memory.first_cpu_hint():
    log.warning('%s', hint)
  rng = jax.random.PRNGKey(cfg.seed)
  names = cfg.model_names()
  meta = dict(metadata or {}, batch_size=cfg.batch_size, crop_size=cfg.crop_size,
              min_scale=cfg.min_scale, learning_rate=cfg.learning_rate,
              final_learning_rate=cfg.final_learning_rate, schedule=cfg.schedule,
              schedule_steps=cfg.steps, seed=cfg.seed,
              **({'grad_clip': cfg.grad_clip} if cfg.grad_clip else {}))
  real_rates = range_coding.available()

  def current_models() -> list[models.Model]:
    return [models.Model(name, config, unstack(state['params'], i),
                         dict(meta, beta=beta, steps=int(state['step']),
                              train_hours=round(float(state['seconds']) / 3600, 3),
                              cpu_hours=round(float(state['cpu_seconds']) / 3600, 3)))
            for i, (name, beta) in enumerate(zip(names, cfg.betas))]

  def evaluate(done: int):
    for model in current_models():
      for image_name, image in (eval_images or {}).items():
        result = image_rates.evaluate_image(model, image, real=real_rates)
        _append_jsonl(os.path.join(workdir, 'eval_log.jsonl'),
                      {'step': done, 'model': model.name, 'image': image_name, **result})
        log.info('eval step %d %s %s: bpp %.4f (estimate %.4f) psnr %.2f dB', done,
                 model.name, image_name, result.get('bpp_real', float('nan')),
                 result['bpp_eval_estimate'], result['psnr_db'])

  start_step = int(state['step'])
  t0, window = time.time(), []
  last, last_cpu = time.time(), time.process_time()
  # On an accelerator one thread of crops would keep the device waiting.
  workers = 1 if jax.default_backend() == 'cpu' else min(8, os.cpu_count() or 1)
  with data.CropStream(images, cfg.batch_size, cfg.crop_size, cfg.seed,
                       start_step=start_step, min_scale=cfg.min_scale,
                       workers=workers) as stream, \
       checkpointing.manager(_checkpoint_dir(workdir)) as manager:
    for step, batch in zip(range(start_step, cfg.steps), stream):
      state, metrics = step_fn(state, batch, jax.random.fold_in(rng, step), betas,
                               learning_rate_at(cfg, step), cfg.grad_clip)
      window.append(metrics)
      done = step + 1
      _stop_if_diverged(state['opt_state'], names, done)
      if done % cfg.log_every == 0 or done == cfg.steps:
        now, now_cpu = time.time(), time.process_time()
        state['seconds'] = state['seconds'] + (now - last)
        state['cpu_seconds'] = state['cpu_seconds'] + (now_cpu - last_cpu)
        last, last_cpu = now, now_cpu
        mean = {k: np.mean([np.asarray(m[k]) for m in window], axis=0) for k in window[0]}
        mean['grad_norm_max'] = np.max([np.asarray(m['grad_norm']) for m in window], axis=0)
        window = []
        rate = (done - start_step) / (now - t0)
        eta_min = (cfg.steps - done) / max(rate, 1e-9) / 60
        # A constant-rate run has no end of its own (a campaign stops it by time).
        progress = (f'{done}' if cfg.schedule == 'constant' else
                    f'{done}/{cfg.steps}  ETA {eta_min:.1f} min')
        for i, name in enumerate(names):
          record = {k: float(v[i]) for k, v in mean.items()}
          _append_jsonl(os.path.join(workdir, 'train_log.jsonl'),
                        {'step': done, 'model': name, **record})
          log.info('step %s  %.2f steps/s  %s  loss %.1f  bpp %.4f  '
                   'psnr %.2f dB', progress, rate, name, record['loss'],
                   record['bpp'], record['psnr_db'])
      stop = bool(should_stop and done % cfg.log_every == 0 and should_stop(done))
      if done % cfg.save_every == 0 or done == cfg.steps or stop:
        checkpointing.save(manager, done, state)
        trained = current_models()
        for model in trained:
          models.save_model(model, os.path.join(workdir, 'models', model.name + '.msgpack'))
        if on_save is not None:
          on_save(trained)
      if cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.steps or stop):
        evaluate(done)
      if stop:
        log.info('stopping at step %d', done)
        break
  return current_models()
