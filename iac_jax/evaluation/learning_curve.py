"""The training campaign's learning curve: held-out PSNR and rate against CPU hours.

Records are the lines `campaign.run` appends to its curve file, one per (model,
held-out photo, evaluation): cumulative steps and CPU hours, branch ('constant' for
the running constant-rate branch, 'snapshot' for a decayed, shipped snapshot),
real bpp and PSNR.

A run that starts from older weights than the newest records (a fresh machine
continues from the shipped snapshot; a longer branch that was never shipped is lost
with its machine) begins a new *lineage*: in file order, a model's constant-branch
steps go back. Lineages are kept apart, so that a curve never zigzags between two branches.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Sequence

import numpy as np

from iac_jax.evaluation import rd_figures


def read(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def lineages(records: Sequence[dict], model: str) -> list[int]:
  """The lineage of each of `model`'s records, in file order: 0, then one more each
  time a constant-branch record's steps go back below the lineage's furthest (a
  snapshot runs its decay steps ahead of the branch it was taken from)."""
  out, lineage, furthest = [], 0, -1
  for r in records:
    if r['model'] != model:
      continue
    if r['branch'] == 'constant':
      if r['cumulative_steps'] < furthest:
        lineage, furthest = lineage + 1, -1
      furthest = max(furthest, r['cumulative_steps'])
    out.append(lineage)
  return out


def points(records: Sequence[dict], model: str) -> list[dict]:
  """Per evaluation of `model`: the mean over its held-out photos, sorted by lineage,
  then steps."""
  mine = [r for r in records if r['model'] == model]
  groups = collections.defaultdict(list)
  for r, lineage in zip(mine, lineages(records, model)):
    groups[(lineage, r['cumulative_steps'], r['branch'])].append(r)
  out = []
  for (lineage, steps, branch), rs in sorted(groups.items()):
    out.append({'model': model, 'lineage': lineage, 'cumulative_steps': steps,
                'branch': branch,
                'cumulative_cpu_hours': max(r['cumulative_cpu_hours'] for r in rs),
                'images': len(rs),
                'bpp': float(np.mean([r['bpp_real'] for r in rs])),
                'psnr_db': float(np.mean([r['psnr_db'] for r in rs]))})
  return out


# Issue 12's plateau: less than this gain at a fixed beta over the last PLATEAU_HOURS.
PLATEAU_DB, PLATEAU_HOURS = 0.1, 5.0


def recent_gain(rows: Sequence[dict], hours: float = PLATEAU_HOURS,
                lineage: int | None = None) -> dict | None:
  """Held-out PSNR gained over the last `hours` CPU hours, on the decayed snapshots.

  The snapshots are comparable with each other (the constant branch, undecayed, sits
  lower); the PSNR `hours` before the newest snapshot is interpolated between the two
  snapshots around it. Measured on `lineage`, by default the one that reached the most
  CPU hours, the furthest evidence on a plateau. None while its snapshots do not reach
  that far back.
  """
  snaps = [r for r in rows if r['branch'] == 'snapshot']
  if snaps:
    if lineage is None:
      lineage = max(snaps, key=lambda r: r['cumulative_cpu_hours']).get('lineage', 0)
    snaps = [r for r in snaps if r.get('lineage', 0) == lineage]
  snaps.sort(key=lambda r: r['cumulative_cpu_hours'])
  if len(snaps) < 2:
    return None
  end = snaps[-1]['cumulative_cpu_hours']
  start = end - hours
  times = [r['cumulative_cpu_hours'] for r in snaps]
  if times[0] > start:
    return None
  then = float(np.interp(start, times, [r['psnr_db'] for r in snaps]))
  gain = snaps[-1]['psnr_db'] - then
  return {'lineage': lineage, 'from_hours': start, 'to_hours': end, 'gain_db': gain,
          'plateau': gain < PLATEAU_DB}


def _name_prefix(rows: Sequence[dict]) -> str:
  return f"{rows[0]['model']}: " if rows and rows[0].get('model') else ''


def recent_gain_line(rows: Sequence[dict], hours: float = PLATEAU_HOURS) -> str:
  """The plateau test in words: on the furthest lineage and, where that is not the
  newest one (the one the shipped weights come from), on the newest too."""
  name = _name_prefix(rows)
  g = recent_gain(rows, hours)
  if g is None:
    return f'{name}over the last {hours:g} CPU hours: not enough snapshots yet.\n'
  text = _gain_words(name, hours, g)
  newest = max((r.get('lineage', 0) for r in rows if r['branch'] == 'snapshot'), default=0)
  if newest != g['lineage']:
    mine = recent_gain(rows, hours, lineage=newest)
    text += (_gain_words(f'{name}newest lineage ({newest}), ', hours, mine) if mine else
             f'{name}newest lineage ({newest}): not {hours:g} CPU hours of snapshots yet.\n')
  return text


def _gain_words(prefix: str, hours: float, g: dict) -> str:
  verdict = 'a plateau' if g['plateau'] else 'no plateau'
  return (f"{prefix}over the last {hours:g} CPU hours of snapshots ({g['from_hours']:.2f} -> "
          f"{g['to_hours']:.2f}, interpolated): {g['gain_db']:+.2f} dB held-out PSNR, "
          f'{verdict} (issue 12 calls less than {PLATEAU_DB:g} dB one).\n')


def gain_per_doubling(rows: Sequence[dict]) -> dict | None:
  """Held-out PSNR gained per doubling of cumulative steps, on the decayed snapshots.

  A least-squares line of PSNR against log2(steps) through the snapshots of every
  lineage from half the furthest snapshot's steps on: the lineages share this axis (a
  run restarted from a snapshot follows the lineage it left step for step; NOTES.md),
  which CPU hours, counted on machines of different speeds, do not. `steps_for(gain)`
  reads the line forward: the cumulative steps at which it is `gain` dB above its value
  at the furthest snapshot. None with fewer than three snapshots in the window.
  """
  snaps = [r for r in rows if r['branch'] == 'snapshot']
  if not snaps:
    return None
  end = max(r['cumulative_steps'] for r in snaps)
  window = [r for r in snaps if r['cumulative_steps'] >= end / 2]
  if len({r['cumulative_steps'] for r in window}) < 3:
    return None
  x = np.log2([r['cumulative_steps'] for r in window])
  slope, _ = np.polyfit(x, [r['psnr_db'] for r in window], 1)
  return {'from_steps': min(r['cumulative_steps'] for r in window), 'to_steps': end,
          'snapshots': len(window), 'db_per_doubling': float(slope),
          'steps_for': lambda gain: end * 2 ** (gain / slope) if slope > 0 else float('inf')}


def gain_per_doubling_line(rows: Sequence[dict]) -> str:
  name = _name_prefix(rows)
  g = gain_per_doubling(rows)
  if g is None:
    return f'{name}per doubling of steps: fewer than three snapshots in the last doubling.\n'
  return (f"{name}{g['db_per_doubling']:+.2f} dB held-out PSNR per doubling of cumulative "
          f"steps (least squares over the {g['snapshots']} snapshots from "
          f"{g['from_steps']:,} to {g['to_steps']:,} steps, all lineages); at that slope "
          f"the line is 1 dB above its value at {g['to_steps']:,} steps at "
          f"{g['steps_for'](1.0):,.0f} cumulative steps, 2 dB at "
          f"{g['steps_for'](2.0):,.0f}.\n")


def markdown(rows: Sequence[dict]) -> str:
  header = ('| model | lineage | branch | cumulative steps | CPU hours (campaign) | '
            'held-out bpp | held-out PSNR (dB) |')
  lines = [header, '|---|---:|---|---:|---:|---:|---:|']
  for r in rows:
    lines.append(f"| {r['model']} | {r.get('lineage', 0)} | {r['branch']} | "
                 f"{r['cumulative_steps']:,} | "
                 f"{r['cumulative_cpu_hours']:.2f} | {r['bpp']:.4f} | {r['psnr_db']:.2f} |")
  return '\n'.join(lines) + '\n'


def plot(curves: dict[str, Sequence[dict]], path: str, title: str = '') -> None:
  """PSNR (top) and bpp (bottom) of each model against cumulative CPU hours; a
  model's earlier lineages are drawn faded, its newest in full."""
  plt = rd_figures.pyplot()
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
  for i, (model, rows) in enumerate(curves.items()):
    newest = max((r.get('lineage', 0) for r in rows), default=0)
    for lineage in sorted({r.get('lineage', 0) for r in rows}):
      mine = [r for r in rows if r.get('lineage', 0) == lineage]
      style = {'color': f'C{i}', 'alpha': 1.0 if lineage == newest else 0.3,
               'label': model if lineage == newest else None}
      hours = [r['cumulative_cpu_hours'] for r in mine]
      top.plot(hours, [r['psnr_db'] for r in mine], 'o-', **style)
      bottom.plot(hours, [r['bpp'] for r in mine], 'o-', **style)
      snaps = [r for r in mine if r['branch'] == 'snapshot']
      top.plot([r['cumulative_cpu_hours'] for r in snaps], [r['psnr_db'] for r in snaps],
               'k*', markersize=10, alpha=style['alpha'])
  top.set_ylabel('held-out PSNR (dB)')
  bottom.set_ylabel('held-out bpp')
  bottom.set_xlabel('CPU hours of the campaign (process CPU time)')
  top.legend(fontsize=8)
  top.set_title(title or 'campaign learning curve (stars: decayed snapshots; faded: earlier '
                'lineages)', fontsize=9)
  rd_figures.savefig(fig, path)
