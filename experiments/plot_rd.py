"""Figures and tables of an adaptation sweep: RD curves, ablations, update bits.

  .venv/bin/python experiments/plot_rd.py --results_dir=results/adaptation \
      --stream=results/adaptation/streams/bigbuckbunny.full.small-beta100.iac

Reads <results_dir>/rd.csv (experiments/rd_sweep.py) and, when present,
<results_dir>/classical.csv (experiments/classical_sweep.py); writes into
<results_dir>: rd_<video>.png (PSNR vs bpp per clip), rd_average.png (mean over
clips), update_share.png (update bits as a share of the total as I-frames grow),
update_bits_by_tensor.png (from --stream, a video bitstream with an update), and
tables.md (the ablation table and the BD-rates of `full` against every anchor).
"""

from __future__ import annotations

import csv
import os

from absl import app, flags

from iac_jax import stream_info
from iac_jax.evaluation import rd_figures
from iac_jax.io import atomic_io

_RESULTS_DIR = flags.DEFINE_string('results_dir', 'results/adaptation',
                                   'Folder with rd.csv (and classical.csv); outputs go here.')
_STREAM = flags.DEFINE_string('stream', None, 'A video bitstream with an update, for the '
                              'per-tensor update bits (none: that figure is skipped).')
_MAX_BPP = flags.DEFINE_float('max_bpp', 2.5, 'Right end of the RD plots\' rate axis.')


def _read(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def main(argv):
  del argv
  out = _RESULTS_DIR.value
  rows = _read(os.path.join(out, 'rd.csv'))
  if not rows:
    raise app.UsageError(f'no rows in {os.path.join(out, "rd.csv")}: run rd_sweep.py first')
  classical_rows = _read(os.path.join(out, 'classical.csv'))
  curve_set = rd_figures.curves(rows, classical_rows)
  clips = rd_figures.full_clips(rows)
  written = []
  for video_name, iframes in clips:
    path = os.path.join(out, f'rd_{os.path.splitext(video_name)[0]}.png')
    rd_figures.plot_rd([(f'{video_name}, {iframes} I-frames', curve_set[(video_name, iframes)])],
                       path, _MAX_BPP.value)
    written.append(path)
  if len(clips) > 1:
    path = os.path.join(out, 'rd_average.png')
    rd_figures.plot_rd([(f'mean over {len(clips)} clips',
                         rd_figures.average_curves(curve_set, clips))], path, _MAX_BPP.value)
    written.append(path)
  shares = rd_figures.update_share(rows)
  path = os.path.join(out, 'update_share.png')
  rd_figures.plot_update_share(shares, path)
  written.append(path)
  if _STREAM.value:
    with open(_STREAM.value, 'rb') as f:
      tensors = stream_info.update_bits_by_tensor(f.read())
    if not tensors:
      raise app.UsageError(f'{_STREAM.value} carries no parameter update')
    path = os.path.join(out, 'update_bits_by_tensor.png')
    rd_figures.plot_tensor_bits(tensors, path, os.path.basename(_STREAM.value))
    written.append(path)
  bd = rd_figures.bd_rows({c: curve_set[c] for c in clips})
  tables = ('## Ablations\n\n' + rd_figures.ablation_markdown(rows) +
            '\n## BD-rate and BD-PSNR of `full`\n\n' + rd_figures.bd_markdown(bd) +
            '\n## Update share of the total bits (`full`)\n\n'
            '| video | model | I-frames | update bits | share |\n|---|---|---|---|---|\n' +
            ''.join(f"| {s['video']} | {s['model']} | {s['iframes']} | {s['update_bits']} | "
                    f"{100 * s['share']:.1f}% |\n" for s in shares))
  path = os.path.join(out, 'tables.md')
  atomic_io.write_bytes(path, tables.encode())
  written.append(path)
  print(tables)
  print('wrote', ', '.join(written))


if __name__ == '__main__':
  app.run(main)
