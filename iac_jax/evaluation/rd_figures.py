"""Figures and tables of an adaptation sweep (rd.csv) beside classical codecs (classical.csv).

Input rows are the CSV rows of `experiments/rd_sweep.py` (one per video, number of
I-frames, model and method) and of `experiments/classical_sweep.py` (one per video and
codec setting). Every curve of ours runs over the shipped models (one beta each);
every rate includes the update bits. Plots are PNG, written atomically.
"""

from __future__ import annotations

import collections
import io
from collections.abc import Sequence

import numpy as np

from iac_jax.evaluation import metrics
from iac_jax.io import atomic_io

METHOD_ORDER = ('none', 'latents', 'encoder', 'full', 'full-no-model-rate', 'full-no-qat')
CLASSICAL_ORDER = ('x265', 'x264', 'webp', 'jpeg')
_STYLE = {'none': 'o:', 'latents': 'v-.', 'encoder': 's--', 'full': 'o-',
          'full-no-model-rate': 'D-', 'full-no-qat': 'x-', 'x265': 'k^-', 'x264': 'k<--',
          'webp': '+:', 'jpeg': '1:'}


def curves(rows: Sequence[dict], classical_rows: Sequence[dict] = ()) -> dict:
  """{(video, iframes): {method or codec: sorted [(bpp, psnr_db)]}}."""
  out = collections.defaultdict(lambda: collections.defaultdict(list))
  for r in rows:
    out[(r['video'], int(r['iframes']))][r['method']].append(
        (float(r['bpp']), float(r['psnr_db'])))
  for r in classical_rows:
    out[(r['video'], int(r['iframes']))][r['codec']].append(
        (float(r['bpp']), float(r['psnr_db'])))
  return {k: {name: sorted(pts) for name, pts in v.items()} for k, v in out.items()}


def full_clips(rows: Sequence[dict]) -> list[tuple[str, int]]:
  """(video, iframes) of each video's largest I-frame count: the whole clip."""
  most = {}
  for r in rows:
    most[r['video']] = max(most.get(r['video'], 0), int(r['iframes']))
  return sorted(most.items())


def bd_rows(curve_set: dict, test: str = 'full',
            anchors: Sequence[str] = ('none', 'encoder', 'x265', 'x264')) -> list[dict]:
  """BD-rate (%) and BD-PSNR (dB) of `test` against each anchor, per clip."""
  out = []
  for (video_name, iframes), by_name in sorted(curve_set.items()):
    points = by_name.get(test, [])
    for anchor in anchors:
      base = by_name.get(anchor, [])
      if len(points) < 2 or len(base) < 2:
        continue
      (ra, pa), (rb, pb) = zip(*base), zip(*points)
      out.append({'video': video_name, 'iframes': iframes, 'test': test, 'anchor': anchor,
                  'bd_rate_pct': metrics.bd_rate(ra, pa, rb, pb),
                  'bd_psnr_db': metrics.bd_psnr(ra, pa, rb, pb),
                  'monotonic': (metrics.rises_with_rate(ra, pa) and
                                metrics.rises_with_rate(rb, pb))})
  return out


def bd_markdown(bd: Sequence[dict]) -> str:
  lines = ['| video | I-frames | test | anchor | BD-rate | BD-PSNR | both curves monotonic |',
           '|---|---|---|---|---|---|---|']
  fmt = lambda v, spec: 'no overlap' if np.isnan(v) else format(v, spec)
  for b in bd:
    lines.append(f"| {b['video']} | {b['iframes']} | {b['test']} | {b['anchor']} | "
                 f"{fmt(b['bd_rate_pct'], '+.1f')}% | {fmt(b['bd_psnr_db'], '+.2f')} dB | "
                 f"{'yes' if b['monotonic'] else 'no: unreliable'} |")
  return '\n'.join(lines) + '\n'


def ablation_markdown(rows: Sequence[dict]) -> str:
  """One line per clip and model: bpp / PSNR / update bits of every method run."""
  clips = set(full_clips(rows))
  table = collections.defaultdict(dict)
  for r in rows:
    if (r['video'], int(r['iframes'])) in clips:
      table[(r['video'], float(r['beta']), r['model'])][r['method']] = r
  methods = [m for m in METHOD_ORDER if any(m in v for v in table.values())]
  lines = ['| video | model | ' + ' | '.join(methods) + ' |',
           '|---|---|' + '---|' * len(methods)]
  for (video_name, _, model), by_method in sorted(table.items(), key=lambda x: (x[0][0],
                                                                               -x[0][1])):
    cells = []
    for m in methods:
      r = by_method.get(m)
      cells.append('' if r is None else
                   f"{float(r['bpp']):.3f} / {float(r['psnr_db']):.2f}"
                   + (f" / {int(r['update_bits']) / 1000:.0f}k" if int(r['update_bits']) else ''))
    lines.append(f'| {video_name} | {model} | ' + ' | '.join(cells) + ' |')
  return ('Each cell: bpp (update included) / PSNR dB / update kbit (methods that send one).\n\n'
          + '\n'.join(lines) + '\n')


def average_curves(curve_set: dict, clips: Sequence[tuple[str, int]]) -> dict:
  """Per method or codec, the mean (bpp, PSNR) over clips of each rate point (the
  i-th point of each clip's sorted curve); only names with equal point counts."""
  out = {}
  names = set.intersection(*(set(curve_set[c]) for c in clips)) if clips else set()
  for name in names:
    curves_of = [curve_set[c][name] for c in clips]
    if len({len(c) for c in curves_of}) == 1:
      out[name] = [tuple(np.mean(p, axis=0)) for p in zip(*curves_of)]
  return out


def savefig(fig, path: str) -> None:
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  fig.tight_layout()
  fig.savefig(buffer, format='png', dpi=100)
  plt.close(fig)
  atomic_io.write_bytes(path, buffer.getvalue())


def pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def plot_rd(panels: Sequence[tuple[str, dict]], path: str, max_bpp: float | None = None) -> None:
  """PSNR vs bpp, one panel per (title, {name: points}); ours first, then classical."""
  plt = pyplot()
  fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
  for ax, (title, by_name) in zip(axes[0], panels):
    for name in METHOD_ORDER + CLASSICAL_ORDER:
      pts = [p for p in by_name.get(name, []) if max_bpp is None or p[0] <= max_bpp]
      if pts:
        label = f'{name} (intra)' if name in ('x264', 'x265') else name
        ax.plot(*zip(*pts), _STYLE.get(name, '.-'), label=label, markersize=5)
    ax.set_title(title)
    ax.set_xlabel('rate (bits per pixel, update included)')
    ax.set_ylabel('PSNR RGB (dB)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  savefig(fig, path)


def plot_tensor_bits(tensors: Sequence[dict], path: str, title: str = '') -> None:
  """One bar per sent tensor: its update bits, with its all-zero (static) cost."""
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(max(8, 0.35 * len(tensors)), 5))
  x = np.arange(len(tensors))
  ax.bar(x, [t['bits'] for t in tensors], label='update bits')
  ax.bar(x, [t['static_bits'] for t in tensors], label='static cost (all-zero update)')
  ax.set_yscale('log')
  ax.set_xticks(x)
  ax.set_xticklabels([t['path'].replace("']['", '/').strip("[]'") for t in tensors],
                     rotation=90, fontsize=7)
  ax.set_ylabel('bits (log scale)')
  total = sum(t['bits'] for t in tensors)
  static = sum(t['static_bits'] for t in tensors)
  ax.set_title(f'{title}  (total {total:,.0f} bits, static {static:,.0f})'.strip())
  ax.grid(axis='y', alpha=0.3)
  ax.legend()
  savefig(fig, path)


def update_share(rows: Sequence[dict], method: str = 'full') -> list[dict]:
  """Update bits as a share of the total, per (video, model) as I-frames grow."""
  out = []
  for r in rows:
    if r['method'] != method:
      continue
    total_bits = int(r['update_bits']) + int(r['frame_bits'])
    out.append({'video': r['video'], 'model': r['model'], 'iframes': int(r['iframes']),
                'update_bits': int(r['update_bits']),
                'share': int(r['update_bits']) / total_bits if total_bits else 0.0})
  return sorted(out, key=lambda s: (s['video'], s['model'], s['iframes']))


def plot_update_share(shares: Sequence[dict], path: str) -> None:
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(6, 4.5))
  groups = collections.defaultdict(list)
  for s in shares:
    groups[(s['video'], s['model'])].append((s['iframes'], 100 * s['share']))
  for (video_name, model), pts in sorted(groups.items()):
    if len(pts) > 1:
      ax.plot(*zip(*sorted(pts)), 'o-', label=f'{video_name}, {model}')
  ax.set_xlabel('I-frames coded')
  ax.set_ylabel('update bits / total bits (%)')
  ax.set_ylim(bottom=0)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  savefig(fig, path)
