"""Instance adaptation: finetune the codec on one video's I-frames.

`adapt(params, frames, rng, config)` is a pure function of its inputs: optimizer
steps as a jitted `lax.scan` (one jitted step per call on CPU, see `adapt`). The
encoder-side parameters `phi` (g_a, h_a) move freely and are never sent; the decoder
side moves through `delta`, which is sent quantized (`update_coding`). Methods (van
Rozendaal et al. 2021, Sec. 4), each described once by a `Method` in `METHOD_TABLE`:

  none                global model, no adaptation
  latents             per-frame optimization of y, z (see `optimize_latents`)
  encoder             finetune phi only; the decoder is unchanged, M = 0
  full                finetune phi and delta on beta (R + M) + D (`objective`),
                      quantization-aware
  full-no-model-rate  as full, without M in the loss (the update is still paid for)
  full-no-qat         as full, without quantization in the forward pass

A step whose loss or gradient is not finite is skipped; `MAX_CONSECUTIVE` of them in
a row stop the adaptation with `DivergedError` (`nonfinite_steps`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from iac_jax.adaptation import objective
from iac_jax.adaptation.model_prior import ModelPrior
from iac_jax.adaptation.stopping import PlateauStop
from iac_jax.codec import quantization
from iac_jax.codec.configs import ModelConfig
from iac_jax.codec.entropy_models import gaussian
from iac_jax.codec.hyperprior import DECODER_SIDE, ENCODER_SIDE, MeanScaleHyperprior
from iac_jax.codec.image_codec import DivergedError
from iac_jax.optim import nonfinite_steps

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Method:
  """What one adaptation method trains, sends and pays for.

  Attributes:
    name: the name `AdaptationConfig.method` takes.
    finetunes: optimizer steps move the encoder phi (and delta, if it is sent).
    sends_update: delta, the decoder-side update, is trained and sent quantized.
    with_model_rate: the loss is beta (R + M) + D, M the update's rate in bits/pixel;
      without it beta R + D (the update is still sent and paid for).
    quantize: the forward pass quantizes as the coder does (quantization-aware).
    optimizes_latents: each frame's y, z are optimized at encoding time.
  """

  name: str
  finetunes: bool = False
  sends_update: bool = False
  with_model_rate: bool = False
  quantize: bool = True
  optimizes_latents: bool = False

  @property
  def uses_steps(self) -> bool:
    """Whether `AdaptationConfig.steps` means anything for this method."""
    return self.finetunes or self.optimizes_latents


METHOD_TABLE = {m.name: m for m in (
    Method('none'),
    Method('latents', optimizes_latents=True),
    Method('encoder', finetunes=True),
    Method('full', finetunes=True, sends_update=True, with_model_rate=True),
    Method('full-no-model-rate', finetunes=True, sends_update=True),
    Method('full-no-qat', finetunes=True, sends_update=True, with_model_rate=True,
           quantize=False),
)}
METHODS = tuple(METHOD_TABLE)


def method_by_name(name: str) -> Method:
  """`METHOD_TABLE[name]`, or ValueError naming the methods there are."""
  if name not in METHOD_TABLE:
    raise ValueError(f'unknown method {name!r}; choose from {METHODS}')
  return METHOD_TABLE[name]


@dataclasses.dataclass(frozen=True)
class AdaptationConfig:
  """How to adapt (static under jit).

  Attributes:
    method: one of METHODS (described by `METHOD_TABLE[method]`, `method_spec`).
    steps: optimizer steps.
    learning_rate: Adam step size for phi (and for delta, unless `delta_learning_rate`).
    delta_learning_rate: Adam step size for delta; None for `learning_rate`.
    warmup_steps: both step sizes rise linearly from 0 over these first steps. A
      fresh Adam moves every parameter by about its full step size at once, which
      costs several dB for the first tens of steps (`results/adaptation_study`).
    decay_at: if above 0, both step sizes are divided by 10 after this fraction of
      `steps` (the schedule of universal-dic's reproduction of the paper: 0.8).
    update_groups: which decoder-side parameters delta may move, a name in
      `update_selection.SUBSETS` ('all', 'synthesis', 'biases-gdn', ...); the others
      stay at the global model's values and are sent as zeros.
    beta: rate weight, as the global model's `beta * bpp + MSE(255)`.
    prior: the update's spike-and-slab prior and grid width t.
    crop_size: side of the random square crops (a multiple of 64), or 0 for whole
      (padded) frames.
    frames_per_step: frames (crops) per optimizer step.
    latent_learning_rate: Adam step size of `latents` (y, z are O(1-10), far larger
      than the parameters); that method runs `steps` steps per frame, on whole frames.
    choose_update: send only the groups of the update (layers) that pay for their
      bits on the video's frames (`update_selection`); the rest are sent as zeros.
  """

  method: str = 'full'
  steps: int = 300
  learning_rate: float = 1e-4
  delta_learning_rate: float | None = None
  warmup_steps: int = 0
  decay_at: float = 0.0
  update_groups: str = 'all'
  beta: float = 100.0
  prior: ModelPrior = dataclasses.field(default_factory=ModelPrior)
  crop_size: int = 0
  frames_per_step: int = 2
  latent_learning_rate: float = 1e-2
  choose_update: bool = False

  def __post_init__(self):
    method_by_name(self.method)
    if self.steps < 0 or self.frames_per_step < 1 or self.crop_size % 64:
      raise ValueError(f'invalid adaptation config {self}')
    if self.warmup_steps < 0 or not 0.0 <= self.decay_at < 1.0:
      raise ValueError(f'invalid schedule: warmup_steps {self.warmup_steps}, '
                       f'decay_at {self.decay_at} (must be in [0, 1))')
    from iac_jax.adaptation import update_selection  # pylint: disable=g-import-not-at-top
    update_selection.subset_predicate(self.update_groups)  # raises on an unknown name

  @property
  def method_spec(self) -> Method:
    return method_by_name(self.method)

  @property
  def sends_update(self) -> bool:
    return self.method_spec.sends_update


# How hard `full` (and `encoder`) adapt, by name: `AdaptationConfig` fields. 'default'
# is what the CLI, the demo and `encode_video` use, chosen by the study in
# results/adaptation_study/README.md: on a 1280x720 static-camera clip of 20 I-frames,
# 300 steps gave full-model adaptation as much over encoder-only as 1,000 (the update
# grows with more steps and eats the gain at low beta), and the RD choice of the
# layers sent was the best of the variants tried; it codes such a clip in 2.5-3
# minutes on 2 CPU cores. 'fast' skips the choice (G + 3 passes over the I-frames);
# 'high' runs 1,000 steps, for a GPU. Every preset ends its last 30% at a tenth of the
# rate: on a global model whose training ended with a decay, a constant 1e-4 leaves the
# adapted model wherever the noise of 2-crop steps put it, which on the sample clip was
# worse than no adaptation (NOTES.md, "Adaptation on the decayed snapshot").
EFFORTS = {
    'fast': {'steps': 300, 'learning_rate': 1e-4, 'decay_at': 0.7, 'crop_size': 256},
    'default': {'steps': 300, 'learning_rate': 1e-4, 'decay_at': 0.7, 'crop_size': 256,
                'choose_update': True},
    'high': {'steps': 1000, 'learning_rate': 1e-4, 'decay_at': 0.7, 'crop_size': 256,
             'choose_update': True},
}


def config_for_effort(effort: str = 'default', **overrides) -> AdaptationConfig:
  """`AdaptationConfig` of the preset `EFFORTS[effort]`, with `overrides` on top (None
  values are ignored, so unset flags can be passed through)."""
  if effort not in EFFORTS:
    raise ValueError(f'unknown effort {effort!r}; choose from {tuple(EFFORTS)}')
  fields = dict(EFFORTS[effort])
  fields.update({k: v for k, v in overrides.items() if v is not None})
  return AdaptationConfig(**fields)


@dataclasses.dataclass(frozen=True)
class AdaptationResult:
  """What `adapt` returns.

  Attributes:
    encoder_params: adapted g_a, h_a.
    delta: the (unquantized) decoder-side update; zeros where nothing is sent.
    update_ints: the integers k to send (decoder-side tree), or None.
    history: per step, 'loss', 'bpp', 'model_bpp', 'model_bits', 'mse_255'.
  """

  encoder_params: dict
  delta: dict
  update_ints: dict | None
  history: dict


def _sample_batch(frames: jax.Array, rng: jax.Array, config: AdaptationConfig) -> jax.Array:
  """frames float32[T, H, W, 3] -> [frames_per_step, S, S, 3] random frames (crops)."""
  t, h, w, _ = frames.shape
  rng_t, rng_y, rng_x = jax.random.split(rng, 3)
  idx = jax.random.randint(rng_t, (config.frames_per_step,), 0, t)
  batch = frames[idx]
  if not config.crop_size or (config.crop_size >= h and config.crop_size >= w):
    return batch
  size_h, size_w = min(config.crop_size, h), min(config.crop_size, w)
  top = jax.random.randint(rng_y, (), 0, h - size_h + 1)
  left = jax.random.randint(rng_x, (), 0, w - size_w + 1)
  return jax.lax.dynamic_slice(batch, (0, top, left, 0),
                               (config.frames_per_step, size_h, size_w, 3))


def decay_step(config: AdaptationConfig) -> int | None:
  """The step from which the learning rates are a tenth, or None without a decay."""
  return max(round(config.decay_at * config.steps), 1) if config.decay_at else None


def _schedule(config: AdaptationConfig, learning_rate: float) -> optax.Schedule | float:
  if not config.decay_at and not config.warmup_steps:
    return learning_rate
  boundary = decay_step(config)

  def schedule(step):
    rate = learning_rate
    if config.warmup_steps:
      rate = rate * jnp.minimum((step + 1.0) / config.warmup_steps, 1.0)
    if boundary is not None:
      rate = jnp.where(step >= boundary, 0.1 * rate, rate)
    return rate
  return schedule


def _labels(params: dict, config: AdaptationConfig) -> dict:
  """Optimizer label per trainable leaf: 'phi', 'delta', or 'frozen' (delta leaves
  outside `config.update_groups`, and all of delta when nothing is sent)."""
  from iac_jax.adaptation import update_selection  # pylint: disable=g-import-not-at-top
  moves = update_selection.subset_predicate(config.update_groups)
  delta = jax.tree_util.tree_map_with_path(
      lambda p, _: 'delta' if config.sends_update and moves(jax.tree_util.keystr(p))
      else 'frozen', {k: params[k] for k in DECODER_SIDE})
  return {'phi': jax.tree.map(lambda _: 'phi', {k: params[k] for k in ENCODER_SIDE}),
          'delta': delta}


def _optimizer(config: AdaptationConfig, labels: dict) -> optax.GradientTransformation:
  delta_rate = (config.learning_rate if config.delta_learning_rate is None
                else config.delta_learning_rate)
  # A step whose loss or gradient is not finite (NaN in the data, an overflow) is
  # skipped rather than written into the parameters; `adapt` stops after
  # `nonfinite_steps.MAX_CONSECUTIVE` in a row.
  return nonfinite_steps.skip_nonfinite(optax.multi_transform(
      {'phi': optax.adam(_schedule(config, config.learning_rate)),
       'delta': optax.adam(_schedule(config, delta_rate)),
       'frozen': optax.set_to_zero()}, labels))


def stop_if_diverged(opt_state: optax.ApplyIfFiniteState) -> None:
  """Raises DivergedError once the last MAX_CONSECUTIVE steps (of any video, when
  `opt_state` is stacked over videos) were all skipped as non-finite."""
  limit = nonfinite_steps.MAX_CONSECUTIVE
  if np.any(nonfinite_steps.consecutive_nonfinite(opt_state) >= limit):
    raise DivergedError(f'adaptation stopped: the last {limit} steps had a non-finite '
                        'loss or gradient (NaN in the frames, or a learning rate too '
                        'large); try a smaller learning rate')


def _loss_fn(model_config: ModelConfig, config: AdaptationConfig, video_pixels):
  method = config.method_spec
  return functools.partial(
      objective.rate_distortion_model_rate, model=MeanScaleHyperprior(model_config),
      beta=config.beta, prior=config.prior, video_pixels=video_pixels,
      quantize=method.quantize, with_model_rate=method.with_model_rate)


def adaptation_step(carry, theta_global: dict, frames: jax.Array, rng_step: jax.Array,
                    video_pixels: jax.Array, *, model_config: ModelConfig,
                    config: AdaptationConfig):
  """One optimizer step of one video; carry = (trainable, opt_state). Pure."""
  loss_fn = _loss_fn(model_config, config, video_pixels)
  trainable, opt_state = carry
  optimizer = _optimizer(config, _labels({**trainable['phi'], **trainable['delta']}, config))
  rng_batch, rng_loss = jax.random.split(rng_step)
  batch = _sample_batch(frames, rng_batch, config)
  (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      trainable, theta_global, batch, rng_loss)
  updates, opt_state = optimizer.update(grads, opt_state, trainable)
  return (optax.apply_updates(trainable, updates), opt_state), metrics


def run_steps(carry, theta_global: dict, frames: jax.Array, rngs: jax.Array,
              video_pixels: jax.Array, *, model_config: ModelConfig,
              config: AdaptationConfig):
  """`len(rngs)` steps of one video, as one `lax.scan` (no loop for a single step)."""
  step = functools.partial(adaptation_step, theta_global=theta_global, frames=frames,
                           video_pixels=video_pixels, model_config=model_config,
                           config=config)
  if rngs.shape[0] == 1:  # no loop at all: see `steps_per_call` in `adapt`
    carry, metrics = step(carry, rng_step=rngs[0])
    return carry, jax.tree.map(lambda m: m[None], metrics)
  return jax.lax.scan(lambda c, r: step(c, rng_step=r), carry, rngs)


_run_steps = jax.jit(run_steps, static_argnames=('model_config', 'config'),
                     donate_argnums=(0,))


# What `adapt` records per step (the metrics of `objective.rate_distortion_model_rate`).
HISTORY_KEYS = ('loss', 'bpp', 'model_bpp', 'model_bits', 'mse_255')


def _initial_trainable(params: dict) -> dict:
  """phi = the global encoder (copied), delta = 0 over the decoder side."""
  encoder = {k: params[k] for k in ENCODER_SIDE}
  zeros = jax.tree.map(jnp.zeros_like, {k: params[k] for k in DECODER_SIDE})
  return {'phi': jax.tree.map(jnp.array, encoder), 'delta': zeros}


def initial_carry(params: dict, config: AdaptationConfig):
  """(trainable, opt_state) at the start: phi = the global encoder, delta = 0."""
  trainable = _initial_trainable(params)
  return trainable, _optimizer(config, _labels(params, config)).init(trainable)


def finish(trainable: dict, histories: list[dict], config: AdaptationConfig
           ) -> AdaptationResult:
  """The result of an adaptation from its final trainable parameters.

  Raises DivergedError if they are not finite, or if the update is too large for the
  coder (it sends |k| < 2^30), so no stream is written from them.
  """
  from iac_jax.adaptation import update_coding  # pylint: disable=g-import-not-at-top
  if not all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(trainable)):
    raise DivergedError('adaptation produced non-finite parameters; try a smaller '
                        'learning rate')
  # Checked before rounding: a diverged delta / t overflows the cast to int64.
  largest = max((float(np.max(np.abs(np.asarray(d)), initial=0.0))
                 for d in jax.tree.leaves(trainable['delta'])), default=0.0)
  if config.sends_update and largest / config.prior.t >= 2.0**30:
    raise DivergedError(f'adaptation diverged: the parameter update is too large to '
                        f'code (|delta| / t = {largest / config.prior.t:.3g} >= 2^30); '
                        'try a smaller learning rate')
  ints = (update_coding.update_integers(trainable['delta'], config.prior.t)
          if config.sends_update else None)
  history = {k: np.concatenate([np.asarray(h[k]) for h in histories]) for k in histories[0]}
  return AdaptationResult(trainable['phi'], trainable['delta'], ints, history)


def step_keys(rng: jax.Array, steps: int) -> jax.Array:
  """The key of each step, `fold_in(rng, step)`: a run's first n steps do not depend
  on how many it runs (so 300 steps are the start of a 1,000-step run)."""
  return jax.vmap(lambda i: jax.random.fold_in(rng, i))(jnp.arange(steps, dtype=jnp.uint32))


def default_steps_per_call(chunk: int) -> int:
  """1 on CPU (XLA CPU runs the step ~20x slower inside lax.scan), else `chunk`."""
  return 1 if jax.default_backend() == 'cpu' else chunk


def chunk_size(steps: int, target: int) -> int:
  """The largest divisor of `steps` not above `target` (at least 1): chunks of steps
  of one size need one compiled program."""
  return max((d for d in range(1, min(steps, target) + 1) if steps % d == 0), default=1)


def adapt(params: dict, frames: jax.Array, rng: jax.Array,
          config: AdaptationConfig, model_config: ModelConfig,
          video_pixels: int | None = None,
          progress: Callable[[int, dict], None] | None = None,
          progress_every: int = 25,
          steps_per_call: int | None = None, checkpoint_dir: str | None = None,
          checkpoint_every: int = 50, stop: PlateauStop | None = None,
          snapshot_at: Sequence[int] = (),
          on_snapshot: Callable[[int, AdaptationResult], None] | None = None
          ) -> AdaptationResult:
  """Adapts `params` to `frames` float32[T, H, W, 3] in [0, 1] (H, W multiples of 64).

  `video_pixels` (default: all pixels of `frames`) spreads the model rate; pass the
  unpadded pixel count when the frames are padded. With `progress`, the steps run in
  jitted chunks of about `progress_every` and `progress(steps_done, last_metrics)` is
  called after each; the result does not depend on the chunking.

  `steps_per_call` is how many steps one jitted `lax.scan` runs. The default is all
  of them (or one progress chunk) on GPU/TPU, and 1 on CPU: XLA's CPU backend runs
  this step about 20x slower inside a while loop (`lax.scan`) than as a plain jitted
  step (measured with the `small` config on 2x192x192 frames, jax 0.5.3, 2 cores:
  7.8 s vs 0.36 s per step), so on CPU a jitted single step is called from Python.

  With `checkpoint_dir`, the state (parameters, optimizer, history, step) is saved
  there with Orbax about every `checkpoint_every` steps, and a rerun with the same
  arguments resumes from the latest one. Every step's randomness is fixed up front,
  so a resumed run ends exactly where an uninterrupted one would.

  With `stop` (`stopping.PlateauStop`), adaptation ends early once the loss has
  stopped improving (or its time cap is spent): `config.steps` is then the most it
  runs, and the result's history is as long as the steps it ran.

  With `on_snapshot`, `on_snapshot(step, result)` is called after each step in
  `snapshot_at` with the result as `adapt` would return it had it stopped there: one
  trajectory gives the outcome of several step budgets: with a learning rate that
  does not depend on `config.steps` (no `decay_at`), the snapshot at n steps equals
  `adapt` run for n steps (`step_keys`).
  """
  if frames.ndim != 4 or frames.shape[-1] != 3:
    raise ValueError(f'expected frames [T, H, W, 3], got {frames.shape}')
  video_pixels = int(video_pixels or np.prod(frames.shape[:3]))
  if not config.method_spec.finetunes or config.steps == 0:
    trainable = _initial_trainable(params)
    return AdaptationResult(trainable['phi'], trainable['delta'], None, {})
  theta_global = {k: params[k] for k in DECODER_SIDE}
  carry = initial_carry(params, config)
  rngs = step_keys(rng, config.steps)
  chunk = chunk_size(config.steps, progress_every) if progress else config.steps
  if steps_per_call is None:
    steps_per_call = default_steps_per_call(chunk)
  # Calls never straddle a window of the stopping rule, so where it stops does not
  # depend on the chunking.
  per_call = chunk_size(math.gcd(chunk, stop.window) if stop else chunk, steps_per_call)
  snapshot_at = sorted({int(n) for n in snapshot_at if 0 < n <= config.steps})
  if on_snapshot and snapshot_at:
    per_call = math.gcd(per_call, *snapshot_at)  # calls end on every snapshot step
  pixels = jnp.float32(video_pixels)
  history = {k: np.zeros(config.steps, np.float32) for k in HISTORY_KEYS}
  done = 0
  if checkpoint_dir:
    from iac_jax.optim import checkpointing  # pylint: disable=g-import-not-at-top
    checkpointing.claim(checkpoint_dir, {
        'config': repr(config), 'model_config': repr(model_config),
        'frames': list(frames.shape), 'video_pixels': video_pixels,
        'rng': np.asarray(rng).tolist(), 'per_call': per_call})
    restored = checkpointing.restore_latest(
        checkpoint_dir, {'carry': carry, 'history': history, 'step': np.int32(0)})
    if restored is not None:
      carry, done = restored['carry'], int(restored['step'])
      history = jax.tree.map(np.array, restored['history'])  # writable copies
  manager = checkpointing.manager(checkpoint_dir) if checkpoint_dir else None
  start = time.perf_counter()
  stopped = bool(stop and stop.should_stop(history['loss'][:done], seconds=0.0))
  try:
    for call in range(done, config.steps if not stopped else done, per_call):
      carry, metrics = _run_steps(carry, theta_global, frames, rngs[call:call + per_call],
                                  pixels, model_config=model_config, config=config)
      for k in HISTORY_KEYS:
        history[k][call:call + per_call] = np.asarray(metrics[k])
      done = call + per_call
      stop_if_diverged(carry[1])
      stopped = bool(stop and stop.should_stop(history['loss'][:done],
                                               time.perf_counter() - start))
      if manager and (done % checkpoint_every < per_call or done == config.steps or stopped):
        checkpointing.save(manager, done, {'carry': carry, 'history': history,
                                           'step': np.int32(done)})
      if on_snapshot and done in snapshot_at:
        # A host copy: the next call donates the carry's buffers.
        on_snapshot(done, finish(jax.tree.map(np.array, carry[0]),
                                 [{k: v[:done].copy() for k, v in history.items()}], config))
      if progress and (done % chunk == 0 or stopped):
        progress(done, {k: float(v[done - 1]) for k, v in history.items()})
      if stopped:
        break
  finally:
    if manager:
      manager.close()
  boundary = decay_step(config)
  if stopped and boundary is not None and done <= boundary:
    log.warning('adaptation stopped early at step %d of %d, before its learning-rate decay '
                'at step %d: the adapted model has not had the decay (pass fewer steps, '
                'or decay_at=0)', done, config.steps, boundary)
  return finish(carry[0], [{k: v[:done] for k, v in history.items()}], config)


@functools.partial(jax.jit, static_argnames=('model_config', 'steps', 'learning_rate',
                                             'beta'))
def optimize_latents(params: dict, frame: jax.Array, rng: jax.Array, *,
                     model_config: ModelConfig, steps: int, learning_rate: float,
                     beta: float) -> tuple[jax.Array, jax.Array]:
  """Latent optimization (Campos et al. 2019): refine y, z of one frame for the RD loss.

  frame: float32[1, H, W, 3]. Returns (y, z) to be coded instead of g_a's output; the
  decoder is unchanged. Rates use noise, the synthesis straight-through rounding.
  """
  model = MeanScaleHyperprior(model_config)
  y0, z0 = model.apply({'params': params}, frame, method='analysis')
  num_pixels = frame.shape[1] * frame.shape[2]

  def loss_fn(latents, rng_step):
    y, z = latents
    rng_y, rng_z = jax.random.split(rng_step)
    z_hat = model.apply({'params': params}, z, method='quantize_z')
    mu, sigma = model.apply({'params': params}, z_hat, method='hyper_synthesis')
    y_hat = quantization.quantize(y, mu)
    x_hat = model.apply({'params': params}, y_hat, method='synthesis')
    z_bits = model.apply({'params': params}, z, rng_z, method='z_bits')
    y_bits = gaussian.bits(y, mu, sigma, rng_y)
    bpp = (jnp.sum(y_bits) + jnp.sum(z_bits)) / num_pixels
    return beta * bpp + jnp.mean(jnp.square(x_hat - frame)) * 255.0**2

  optimizer = optax.adam(learning_rate)

  def step(carry, rng_step):
    latents, opt_state = carry
    grads = jax.grad(loss_fn)(latents, rng_step)
    updates, opt_state = optimizer.update(grads, opt_state, latents)
    return (optax.apply_updates(latents, updates), opt_state), None

  latents = (y0, z0)
  (latents, _), _ = jax.lax.scan(step, (latents, optimizer.init(latents)),
                                 jax.random.split(rng, steps))
  return latents
