"""The adaptation study: what full-model adaptation gains over encoder-only, and at what cost.

A *setting* is a named set of `AdaptationConfig` overrides (learning rates and their
schedule, the update's bin width t and spike weight alpha, the parameter groups
sent, ...). `run_trajectory` adapts one clip with one model (one beta), one method
and one setting once, up to the largest step budget asked for, and codes the
adapted model at every budget on the way (real bitstreams): with a constant
learning rate, the outcome of 300 steps is the first 300 steps of the 1,000-step
run. Rows accumulate in a CSV; a rerun skips the rows it already has.

`compare` pairs each full-model row with the encoder-only row of the same clip,
beta, steps and encoder-side optimizer (a setting's `anchor`), and gives per beta
the PSNR and rate differences and the RD cost J = MSE + beta * bpp of each (lower
is better), and over the betas BD-PSNR of full against encoder.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import os
import time
from collections.abc import Callable, Sequence

import jax
import numpy as np

from iac_jax.adaptation import finetuning
from iac_jax.adaptation.finetuning import EFFORTS, AdaptationConfig
from iac_jax.adaptation.model_prior import ModelPrior
from iac_jax.adaptation.video_codec import encode_adapted, padded_input
from iac_jax.codec.models import Model
from iac_jax.evaluation import metrics
from iac_jax.io import atomic_io

FIELDS = ('clip', 'iframes', 'pixels', 'model', 'beta', 'method', 'setting', 'seed', 'steps',
          'bpp', 'psnr_db', 'mse_255', 'update_bits', 'model_bpp', 'sent', 'adapt_seconds',
          'encode_seconds')


# The fields of the encoder-side optimizer: an encoder-only anchor shares these.
ENCODER_OPTIMIZER_FIELDS = ('learning_rate', 'decay_at', 'warmup_steps')


@dataclasses.dataclass(frozen=True)
class Setting:
  """A named variant of the adaptation.

  Attributes:
    name: how rows and tables name it.
    overrides: `AdaptationConfig` fields it changes ('t' and 'alpha' go to the prior).
    anchor: the encoder-only setting with the same encoder-side optimizer, that
      this setting's full-model rows are compared with.
    snapshots: whether one run can give every step budget (constant learning rate).
  """

  name: str
  overrides: dict = dataclasses.field(default_factory=dict)
  anchor: str = 'base'

  @property
  def snapshots(self) -> bool:
    return not self.overrides.get('decay_at')


SETTINGS = {s.name: s for s in (
    Setting('base'),
    Setting('lr3e-4', {'learning_rate': 3e-4}, anchor='lr3e-4'),
    Setting('lr3e-5', {'learning_rate': 3e-5}, anchor='lr3e-5'),
    Setting('warmup', {'warmup_steps': 50}, anchor='warmup'),
    Setting('decay', {'decay_at': 0.8}, anchor='decay'),
    Setting('delta-lr3e-4', {'delta_learning_rate': 3e-4}),
    Setting('delta-lr1e-3', {'delta_learning_rate': 1e-3}),
    Setting('delta-lr3e-5', {'delta_learning_rate': 3e-5}),
    Setting('t0.0025', {'t': 0.0025}),
    Setting('t0.01', {'t': 0.01}),
    Setting('alpha100', {'alpha': 100.0}),
    Setting('alpha10000', {'alpha': 10000.0}),
    Setting('synthesis', {'update_groups': 'synthesis'}),
    Setting('biases-gdn', {'update_groups': 'biases-gdn'}),
    Setting('hyper', {'update_groups': 'hyper'}),
    Setting('choose', {'choose_update': True}),
    Setting('synthesis-choose', {'update_groups': 'synthesis', 'choose_update': True}),
    Setting('synthesis-lr3e-4', {'update_groups': 'synthesis', 'learning_rate': 3e-4},
            anchor='lr3e-4'),
)}


# The CLI's defaults (`finetuning.EFFORTS['default']`), compared with encoder-only under
# the same encoder-side optimizer (base's, unless the preset changes it); its step
# budget comes from the runner's steps.
_DEFAULT = {k: v for k, v in EFFORTS['default'].items() if k not in ('steps', 'crop_size')}
_OWN_ENCODER_OPTIMIZER = any(_DEFAULT.get(k, v) != v for k, v in (
    (k, getattr(AdaptationConfig(), k)) for k in ENCODER_OPTIMIZER_FIELDS))
SETTINGS['default'] = Setting('default', _DEFAULT,
                              anchor='default' if _OWN_ENCODER_OPTIMIZER else 'base')


def setting_by_name(name: str) -> Setting:
  if name not in SETTINGS:
    raise ValueError(f'unknown setting {name!r}; choose from {tuple(SETTINGS)}')
  return SETTINGS[name]


def config_for(setting: Setting, method: str, steps: int, beta: float,
               crop_size: int = 256) -> AdaptationConfig:
  """The `AdaptationConfig` of `setting` for one method, step budget and beta."""
  overrides = dict(setting.overrides)
  prior = ModelPrior(**{k: overrides.pop(k) for k in ('t', 'alpha') if k in overrides})
  if method != 'full':  # the encoder-only anchor keeps the encoder-side optimizer only
    overrides = {k: v for k, v in overrides.items() if k in ENCODER_OPTIMIZER_FIELDS}
  return AdaptationConfig(method=method, steps=steps, beta=beta, crop_size=crop_size,
                          prior=prior, **overrides)


def row_key(row: dict) -> tuple:
  return (row['clip'], row['model'], row['method'], row['setting'], int(row['seed']),
          int(row['steps']))


def read_rows(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def write_rows(path: str, rows: Sequence[dict]) -> None:
  """All rows, atomically (a crash leaves the previous file)."""
  out = io.StringIO()
  writer = csv.DictWriter(out, FIELDS, lineterminator='\n')
  writer.writeheader()
  for r in rows:
    writer.writerow({k: r[k] for k in FIELDS})
  atomic_io.write_bytes(path, out.getvalue().encode())


def run_trajectory(model: Model, beta: float, clip_name: str, frames: np.ndarray,
                   method: str, setting: Setting, steps: Sequence[int], seed: int = 0,
                   crop_size: int = 256, on_row: Callable[[dict], None] | None = None,
                   log: Callable[[str], None] = print) -> list[dict]:
  """Adapts uint8 frames[T, H, W, 3] and codes them at each budget in `steps`.

  A setting with a learning-rate schedule tied to the run's length runs once per
  budget; any other runs once to the largest budget and is coded on the way.
  `on_row(row)` is called as each row is measured.
  """
  t, h, w, _ = frames.shape
  budgets = sorted({int(s) for s in steps})
  runs = [budgets] if setting.snapshots else [[b] for b in budgets]
  rows = []
  for run in runs:
    config = config_for(setting, method, run[-1], beta, crop_size)
    start = time.perf_counter()

    def code(step: int, result: finetuning.AdaptationResult, config=config, start=start):
      adapt_seconds = time.perf_counter() - start
      encode_start = time.perf_counter()
      enc = encode_adapted(model, frames, 2.0, dataclasses.replace(config, steps=step),
                           result, seed)
      mse = float(np.mean((enc.reconstruction.astype(np.float64) - frames) ** 2))
      row = {'clip': clip_name, 'iframes': t, 'pixels': t * h * w, 'model': model.name,
             'beta': beta, 'method': method, 'setting': setting.name, 'seed': seed,
             'steps': step, 'bpp': metrics.bpp(len(enc.data), t * h * w),
             'psnr_db': metrics.mean_psnr_db(frames, enc.reconstruction), 'mse_255': mse,
             'update_bits': enc.update_bits, 'model_bpp': enc.update_bits / (t * h * w),
             'sent': '+'.join(enc.update_choice.sent) if enc.update_choice else '',
             'adapt_seconds': round(adapt_seconds, 1),
             'encode_seconds': round(time.perf_counter() - encode_start, 1)}
      log(f"{clip_name} {model.name} {method} {setting.name} {step} steps: "
          f"{row['bpp']:.4f} bpp {row['psnr_db']:.2f} dB update {row['update_bits']} bits "
          f"({row['adapt_seconds']} s adapting)")
      rows.append(row)
      if on_row:
        on_row(row)

    result = finetuning.adapt(model.params, padded_input(frames), jax.random.PRNGKey(seed),
                              config, model.config, video_pixels=t * h * w,
                              snapshot_at=run[:-1], on_snapshot=code)
    code(run[-1], result)
  return rows


def _j(row: dict) -> float:
  return float(row['mse_255']) + float(row['beta']) * float(row['bpp'])


def compare(rows: Sequence[dict]) -> list[dict]:
  """Per (clip, setting, steps, seed) of the full-model rows, against the anchor's
  encoder-only rows: per-beta differences and, over 3+ betas, BD-PSNR."""
  by_key = {(r['clip'], r['method'], r['setting'], int(r['steps']), int(r['seed']),
             float(r['beta'])): r for r in rows}
  groups = collections.defaultdict(list)
  for r in rows:
    if r['method'] == 'full':
      groups[(r['clip'], r['setting'], int(r['steps']), int(r['seed']))].append(r)
  out = []
  for (clip, name, steps, seed), fulls in sorted(groups.items()):
    anchor = SETTINGS[name].anchor if name in SETTINGS else 'base'
    pairs = []
    for f in sorted(fulls, key=lambda r: float(r['beta'])):
      e = by_key.get((clip, 'encoder', anchor, steps, seed, float(f['beta'])))
      if e is not None:
        pairs.append((f, e))
    if not pairs:
      continue
    entry = {'clip': clip, 'setting': name, 'steps': steps, 'seed': seed,
             'betas': [float(f['beta']) for f, _ in pairs],
             'd_psnr_db': [float(f['psnr_db']) - float(e['psnr_db']) for f, e in pairs],
             'd_bpp_pct': [100 * (float(f['bpp']) / float(e['bpp']) - 1) for f, e in pairs],
             'd_j': [_j(f) - _j(e) for f, e in pairs],
             'update_bits': [int(f['update_bits']) for f, _ in pairs],
             'bd_psnr_db': float('nan'), 'monotonic': False}
    if len(pairs) >= 3:
      rf, pf = zip(*((float(f['bpp']), float(f['psnr_db'])) for f, _ in pairs))
      re, pe = zip(*((float(e['bpp']), float(e['psnr_db'])) for _, e in pairs))
      entry['bd_psnr_db'] = metrics.bd_psnr(re, pe, rf, pf)
      entry['monotonic'] = metrics.rises_with_rate(re, pe) and metrics.rises_with_rate(rf, pf)
    out.append(entry)
  return out


def markdown(comparisons: Sequence[dict]) -> str:
  """The comparisons as a table: BD-PSNR, then per beta dPSNR / drate / dJ."""
  lines = [('| clip | setting | steps | seed | BD-PSNR full vs encoder | per beta: dPSNR dB, '
           'drate %, dJ (full - encoder; J = MSE + beta bpp) | update kbit |'),
           '|---|---|---|---|---|---|---|']
  for c in comparisons:
    bd = ('n/a' if np.isnan(c['bd_psnr_db']) else
          f"{c['bd_psnr_db']:+.2f} dB" + ('' if c['monotonic'] else ' (not monotonic)'))
    per = '; '.join(f"{b:g}: {p:+.2f}, {r:+.1f}, {j:+.2f}" for b, p, r, j in
                    zip(c['betas'], c['d_psnr_db'], c['d_bpp_pct'], c['d_j']))
    kbit = '/'.join(f'{u / 1000:.0f}' for u in c['update_bits'])
    lines.append(f"| {c['clip']} | {c['setting']} | {c['steps']} | {c['seed']} | {bd} | "
                 f"{per} | {kbit} |")
  return '\n'.join(lines) + '\n'


def plot_gain_vs_steps(comparisons: Sequence[dict], path: str, setting: str = 'base') -> None:
  """PNG: BD-PSNR of full over encoder-only against adaptation steps, one line per clip
  (and mean per-beta dPSNR where BD-PSNR is undefined)."""
  from iac_jax.evaluation import rd_figures  # pylint: disable=g-import-not-at-top
  plt = rd_figures.pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
  by_clip = collections.defaultdict(list)
  for c in comparisons:
    if c['setting'] == setting and c['seed'] == 0 and c['steps'] > 0:
      by_clip[c['clip']].append(c)
  plotted = [False, False]

  def line(i, xs, ys, label):
    if np.any(np.isfinite(ys)):
      axes[i].plot(xs, ys, 'o-', label=label)
      plotted[i] = True

  for clip, cs in sorted(by_clip.items()):
    cs = sorted(cs, key=lambda c: c['steps'])
    steps = [c['steps'] for c in cs]
    line(0, steps, [c['bd_psnr_db'] for c in cs], clip)
    for i, beta in enumerate(cs[0]['betas']):
      line(1, steps, [c['d_j'][i] if i < len(c['d_j']) else np.nan for c in cs],
           f'{clip}, beta {beta:g}')
  for ax, used in zip(axes, plotted):
    ax.axhline(0.0, color='k', lw=0.8)
    if used:
      ax.set_xscale('log')
      ax.legend(fontsize=7)
    ax.set_xlabel('adaptation steps')
    ax.grid(alpha=0.3)
  axes[0].set_ylabel('BD-PSNR, full over encoder-only (dB)')
  axes[1].set_ylabel('RD cost J, full minus encoder-only (lower: full wins)')
  fig.suptitle(f'Full-model adaptation vs encoder-only, setting {setting!r}')
  rd_figures.savefig(fig, path)


def rd_panels(rows: Sequence[dict], setting: str, steps: int) -> list[tuple[str, dict]]:
  """Per clip, the RD points of none, encoder-only (the setting's anchor) and full at
  `steps`, for `rd_figures.plot_rd`; clips without full rows for the setting are left out."""
  anchor = SETTINGS[setting].anchor if setting in SETTINGS else 'base'
  panels = collections.defaultdict(lambda: collections.defaultdict(list))
  for r in rows:
    if int(r['seed']) != 0:
      continue
    point = (float(r['bpp']), float(r['psnr_db']))
    if r['method'] == 'none':
      panels[r['clip']]['none'].append(point)
    elif int(r['steps']) == steps and (
        (r['method'] == 'full' and r['setting'] == setting) or
        (r['method'] == 'encoder' and r['setting'] == anchor)):
      panels[r['clip']][r['method']].append(point)
  return [(f'{clip}: {setting}, {steps} steps', {k: sorted(v) for k, v in by.items()})
          for clip, by in sorted(panels.items()) if by.get('full')]
