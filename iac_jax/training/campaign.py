"""The global-model training campaign: every run continues where the last one stopped.

A run starts from the newest weights it can find: its own work directory's
checkpoint (the undecayed weights of an earlier run on this machine) or else the
shipped models (`iac_jax/weights/<config>-beta<beta>.msgpack`), with Adam restarted
behind a short warm-up. It trains all betas in one step at a constant
learning rate until its time budget is spent, then takes a *snapshot*: a short
cosine decay of the learning rate, on a copy, whose weights are written as the new
shipped models. The constant-rate branch stays in the work directory for the next
run on the same machine; a run on a fresh clone continues from the snapshot. So the
schedule never needs the campaign's total length.

Each model's JSON records its cumulative optimizer steps, wall-clock and CPU hours
(process CPU time, independent of what else shares the cores), the data and one
line per run. Every held-out evaluation is appended to `curve_path` with the
cumulative steps and CPU hours: the campaign's learning curve.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence

import jax
import numpy as np

from iac_jax.codec import models, range_coding, weight_grid
from iac_jax.codec.configs import get_config
from iac_jax.evaluation import image_rates
from iac_jax.io import atomic_io, image_io
from iac_jax.training import trainer

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CampaignConfig:
  """One run of the campaign.

  Attributes:
    config_name, betas: which models (`<config>-beta<beta>`).
    hours: wall-clock budget of the run, snapshot included (a file named STOP in the
      work directory ends the constant phase at the next logged step; one named PAUSE
      ends it too, without a snapshot).
    snapshot: end the run with a snapshot (decay, then models written to the weights
      folder); without, the run only advances the constant-rate branch, which the
      next run continues (the repository holds few snapshots: see NOTES.md).
    max_steps: optional cap on the run's constant-rate steps (0 = none).
    decay_steps: length of the snapshot's cosine decay.
    learning_rate, final_learning_rate, warmup_steps: the constant rate, where the
      snapshot's decay ends, the warm-up after a restart of Adam.
    batch_size, crop_size, min_scale: the data (see `trainer.TrainConfig`).
    eval_every: steps between held-out evaluations (real bitstreams).
    eval_long_side: held-out photos are downscaled to this long side first.
    seed: crops and noise (offset by the cumulative step, so runs do not repeat).
  """

  config_name: str = 'small'
  betas: tuple[float, ...] = (500.0, 100.0, 30.0, 10.0)
  hours: float = 1.0
  snapshot: bool = True
  max_steps: int = 0
  decay_steps: int = 500
  learning_rate: float = 1e-4
  final_learning_rate: float = 1e-5
  warmup_steps: int = 200
  batch_size: int = 8
  crop_size: int = 128
  min_scale: float = 0.4
  eval_every: int = 1000
  eval_long_side: int = 512
  seed: int = 0

  def names(self) -> list[str]:
    return [f'{self.config_name}-beta{b:g}' for b in self.betas]


class TimeBudget:
  """When a run's constant phase has to end for its snapshot to fit the budget.

  The snapshot's decay is timed at the fastest step this run has seen, not the
  latest: on a shared machine a job beside a niced campaign can slow its steps
  twentyfold for a while, and timing the decay at that pace ended a 2.3-hour run's
  constant phase after 33 minutes (2026-12-06). A load that lasts makes the run
  overrun its budget instead, by at most the decay.
  """

  def __init__(self, seconds: float, decay_steps: int, start_time: float, start_step: int):
    self.seconds, self.decay_steps = seconds, decay_steps
    self.start_time = start_time
    self._last = (start_time, start_step)
    self._compiled = False  # the first interval holds the compilation: not a step time
    self._fastest: float | None = None  # seconds per step

  def spent(self, step: int, now: float) -> bool:
    """Asked at `step` (time `now`): is it time to stop the constant phase?"""
    last_time, last_step = self._last
    if step > last_step:
      if self._compiled:
        per_step = (now - last_time) / (step - last_step)
        self._fastest = per_step if self._fastest is None else min(self._fastest, per_step)
      self._compiled = True
      self._last = (now, step)
    if self._fastest is None:
      return now - self.start_time >= self.seconds
    return now - self.start_time + self.decay_steps * self._fastest >= self.seconds


def _read_json(path: str) -> dict:
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    return {}


def _write_json(path: str, record: dict):
  atomic_io.write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + '\n').encode())


def _hardware() -> str:
  """Where this run trained: the CPU core count, or the accelerator's kind."""
  if jax.default_backend() == 'cpu':
    return f'{os.cpu_count()} CPU cores (cpu), jax {jax.__version__}'
  device = jax.devices()[0]
  return (f'{jax.device_count()} x {device.device_kind} ({jax.default_backend()}; CPU hours '
          f'count the host process), jax {jax.__version__}')


def constant_phase(cfg: CampaignConfig, seed: int, resumed_at: int | None
                   ) -> trainer.TrainConfig:
  """The constant-rate phase: warmed up when Adam starts afresh (from shipped
  weights), not when the branch resumes with its optimizer state (`resumed_at`)."""
  return trainer.TrainConfig(
      config_name=cfg.config_name, betas=cfg.betas,
      steps=cfg.max_steps if cfg.max_steps else 1 << 30, batch_size=cfg.batch_size,
      crop_size=cfg.crop_size, min_scale=cfg.min_scale, learning_rate=cfg.learning_rate,
      final_learning_rate=cfg.final_learning_rate, schedule='constant',
      warmup_steps=cfg.warmup_steps if resumed_at is None else 0, seed=seed,
      eval_every=cfg.eval_every,
      save_every=min(500, cfg.eval_every) if cfg.eval_every else 500)


def starting_models(cfg: CampaignConfig, weights_dir: str) -> list[models.Model]:
  """The shipped models of the campaign's betas (random ones where none is shipped)."""
  out = []
  for i, name in enumerate(cfg.names()):
    path = os.path.join(weights_dir, name + '.msgpack')
    if os.path.exists(path):
      out.append(models.load_model(path))
    else:
      log.info('%s: no shipped weights, starting from random', name)
      out.append(models.init_model(cfg.config_name, seed=cfg.seed + i, name=name))
  return out


def _start_state(starts: Sequence[models.Model], optimizer) -> tuple[dict, dict]:
  """The fresh training state of `starts`, and a zero template shaped like it for
  restores (`train` donates the state it is given, so restores need their own)."""
  state = trainer.state_from_params(trainer.stack([m.params for m in starts]), optimizer)
  return state, jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), state)


def run(cfg: CampaignConfig, images: Sequence[np.ndarray | str], workdir: str,
        weights_dir: str = models.WEIGHTS_DIR, *, data_description: str = '',
        eval_images: dict[str, np.ndarray] | None = None,
        curve_path: str | None = None) -> list[models.Model]:
  """One campaign run; writes the snapshot's models to `weights_dir` and returns them."""
  start_time = time.time()
  os.makedirs(workdir, exist_ok=True)
  state_path = os.path.join(workdir, 'campaign.json')
  base = _read_json(state_path)
  starts = starting_models(cfg, weights_dir)
  if not base:  # a new branch from the shipped models: remember where it started
    base = {'models': {m.name: {k: m.metadata.get(k, 0) for k in
                                ('cumulative_steps', 'cumulative_hours',
                                 'cumulative_cpu_hours')} for m in starts},
            'history': {m.name: m.metadata.get('history', []) for m in starts}}
    _write_json(state_path, base)
  first = base['models'][starts[0].name]
  seed = cfg.seed + int(first['cumulative_steps'] or 0)
  constant = constant_phase(cfg, seed, resumed_at=None)
  optimizer = trainer.make_optimizer(constant)
  state, template = _start_state(starts, optimizer)
  restored = trainer.restore(os.path.join(workdir, 'constant'), template)
  if restored is not None:
    state = restored
    log.info('continuing the constant-rate branch of %s at step %d', workdir,
             int(state['step']))
    constant = constant_phase(cfg, seed, resumed_at=int(state['step']))
  held = {k: image_io.downscale_long_side(v, cfg.eval_long_side) for k, v in (eval_images or {}).items()}
  budget = TimeBudget(cfg.hours * 3600, cfg.decay_steps if cfg.snapshot else 0,
                      start_time, int(state['step']))
  wants_snapshot = [cfg.snapshot]  # a PAUSE file turns it off

  def should_stop(step: int) -> bool:
    # `touch WORKDIR/STOP`: snapshot now; `touch WORKDIR/PAUSE`: save, no snapshot.
    for name, snapshot in (('STOP', True), ('PAUSE', False)):
      path = os.path.join(workdir, name)
      if os.path.exists(path):
        os.remove(path)
        log.info('found %s: ending the constant phase%s', path,
                 '' if snapshot else ', no snapshot')
        wants_snapshot[0] = wants_snapshot[0] and snapshot
        return True
    return budget.spent(step, time.time())

  def log_curve(trained: list[models.Model], branch: str):
    if not curve_path or not held:
      return
    for model in trained:
      b = base['models'][model.name]
      for image_name, image in held.items():
        result = image_rates.evaluate_image(model, image, real=range_coding.available())
        record = {'model': model.name, 'image': image_name, 'branch': branch,
                  'long_side': cfg.eval_long_side,
                  'cumulative_steps': int(b['cumulative_steps'] or 0) + model.metadata['steps'],
                  'cumulative_cpu_hours': round(float(b['cumulative_cpu_hours'] or 0)
                                                + model.metadata['cpu_hours'], 3),
                  **{k: round(v, 5) if isinstance(v, float) else v
                     for k, v in result.items()}}
        with open(curve_path, 'a') as f:
          f.write(json.dumps(record) + '\n')
        log.info('%s %s step %d: %.4f bpp%s %.2f dB', branch, model.name,
                 record['cumulative_steps'], result.get('bpp_real', result['bpp_eval_estimate']),
                 '' if 'bpp_real' in result else ' (estimated: no range coder here)',
                 result['psnr_db'])

  def on_save(trained: list[models.Model]):
    step = trained[0].metadata['steps']
    if cfg.eval_every and step % cfg.eval_every == 0:
      log_curve(trained, 'constant')

  trainer.train(constant, images, os.path.join(workdir, 'constant'), state=state,
                 should_stop=should_stop, on_save=on_save)
  state = trainer.restore(os.path.join(workdir, 'constant'), template)
  if not wants_snapshot[0]:
    log.warning('constant-rate branch saved at step %d in %s; no snapshot this run. The '
                'branch lives only on this machine: until a snapshot of it is committed '
                '(a run without --nosnapshot, or STOP), a new machine starts from the '
                'shipped weights', int(state['step']), workdir)
    return []
  # The snapshot: a cosine decay on a copy of the constant-rate state.
  start = int(state['step'])
  decay = dataclasses.replace(constant, schedule='decay', decay_start=start,
                              steps=start + cfg.decay_steps, warmup_steps=0)
  decay_dir = os.path.join(workdir, f'decay-{start}')
  decayed = trainer.restore(decay_dir, template)
  trained = trainer.train(decay, images, decay_dir,
                           state=decayed if decayed is not None else state)
  snapshot_state = trainer.restore(decay_dir, template)
  # What ships, and what the learning curve measures: the weights on their 9-bit grid.
  trained = [models.Model(m.name, m.config, weight_grid.grid_precision(m.params), m.metadata)
             for m in trained]
  log_curve(trained, 'snapshot')
  run_line = (f'{time.strftime("%Y-%m-%d")}: {start} constant steps at '
              f'{cfg.learning_rate:g} (warm-up {cfg.warmup_steps}) + {cfg.decay_steps} '
              f'decay steps to {cfg.final_learning_rate:g}; batch {cfg.batch_size}, crops '
              f'{cfg.crop_size}, scale augmentation down to {cfg.min_scale:g}; '
              f'{_hardware()}, {(time.time() - start_time) / 60:.1f} wall minutes')
  meta = {'data': data_description,
          'training': 'iac_jax.training.campaign (make train): constant learning rate, '
                      'cosine-decayed snapshot; all betas in one step on the same batches'}
  return _write_models(cfg, [m.params for m in trained], [m.metadata for m in trained],
                       snapshot_state, base, run_line, meta, weights_dir,
                       precision=lambda p: p)  # already on the grid, above


def _write_models(cfg: CampaignConfig, params: Sequence, metadata: Sequence[dict],
                  state: dict, base: dict, run_line: str, extra: dict,
                  weights_dir: str, precision) -> list[models.Model]:
  """Writes each beta's model, its parameters rounded by `precision`, with the branch's
  cumulative counts: where it started (`base`) plus the optimizer steps, wall and CPU
  seconds of `state`."""
  out = []
  for i, name in enumerate(cfg.names()):
    b = base['models'][name]
    meta = dict(metadata[i])
    for k in ('steps', 'train_hours', 'cpu_hours', 'schedule_steps', 'schedule', 'seed'):
      meta.pop(k, None)
    meta.update(
        extra, beta=cfg.betas[i], config=cfg.config_name,
        cumulative_steps=int(b['cumulative_steps'] or 0) + int(state['step']),
        cumulative_hours=round(float(b['cumulative_hours'] or 0) + float(
            state['seconds']) / 3600, 3),
        cumulative_cpu_hours=round(float(b['cumulative_cpu_hours'] or 0) + float(
            state['cpu_seconds']) / 3600, 3),
        history=list(base['history'].get(name, [])) + [run_line],
        hardware=_hardware())
    meta['steps'] = meta['cumulative_steps']
    meta['train_hours'] = meta['cumulative_hours']
    shipped = models.Model(name, get_config(cfg.config_name),
                           precision(params[i]), meta)
    models.save_model(shipped, os.path.join(weights_dir, name + '.msgpack'))
    out.append(shipped)
    log.info('%s: %d cumulative steps, %.2f CPU hours, written to %s', name,
             meta['cumulative_steps'], meta['cumulative_cpu_hours'], weights_dir)
  return out


def branch_cumulative_steps(workdir: str) -> dict[str, int]:
  """Each model's cumulative steps on the constant-rate branch in `workdir` ({} if none)."""
  base = _read_json(os.path.join(workdir, 'campaign.json'))
  step = trainer.latest_step(os.path.join(workdir, 'constant'))
  if not base or step is None:
    return {}
  return {name: int(b['cumulative_steps'] or 0) + step for name, b in base['models'].items()}


def export_branch(cfg: CampaignConfig, workdir: str, out_dir: str,
                  weights_dir: str = models.WEIGHTS_DIR) -> list[models.Model]:
  """Writes the constant-rate branch's current weights as models in `out_dir`.

  They are undecayed and float16-valued, and their JSONs carry the branch's cumulative
  steps and CPU hours, so a campaign started from them elsewhere (on an accelerator:
  `make accelerator-pack`) continues this machine's branch rather than the older
  shipped weights. Adam's state stays behind; the other run restarts it behind its
  warm-up. Returns [] (writes nothing) when `workdir` holds no branch.
  """
  base = _read_json(os.path.join(workdir, 'campaign.json'))
  if not base:
    return []
  if set(base['models']) != set(cfg.names()):
    raise ValueError(f'the branch in {workdir} trains {sorted(base["models"])}, not '
                     f'{cfg.names()}')
  starts = starting_models(cfg, weights_dir)
  optimizer = trainer.make_optimizer(constant_phase(cfg, cfg.seed, resumed_at=None))
  _, template = _start_state(starts, optimizer)
  state = trainer.restore(os.path.join(workdir, 'constant'), template)
  if state is None:
    return []
  os.makedirs(out_dir, exist_ok=True)
  step = int(state['step'])
  run_line = (f'{time.strftime("%Y-%m-%d")}: {step} steps of the constant-rate branch '
              f'in {workdir}, exported undecayed (campaign.export_branch); {_hardware()}')
  params = [trainer.unstack(state['params'], i) for i in range(len(starts))]
  extra = {'training': 'iac_jax.training.campaign: the constant-rate branch, undecayed '
                       '(campaign.export_branch), for a campaign elsewhere to continue'}
  return _write_models(cfg, params, [m.metadata for m in starts], state, base, run_line,
                       extra, out_dir, weight_grid.half_precision)
