"""Codes videos with every model and adaptation method; writes rd.csv and a summary.

  .venv/bin/python experiments/rd_sweep.py --output_dir=results/adaptation \
      --videos=../shared/data/videos/bigbuckbunny.mp4 --methods=none,encoder,full

Each point (video, number of I-frames, model, method) is measured from a real
bitstream that the decoder reproduces exactly. Resumable: points already in
<output_dir>/rd.csv are skipped. `--iframes=2,4,8` also codes only the first K
I-frames of each video, to show how the update amortizes over more frames.
Each bitstream is kept in <output_dir>/streams/ (for `iac-jax info` and the
per-tensor update bits of experiments/plot_rd.py).
"""

from __future__ import annotations

import csv
import io
import logging as std_logging
import os
import time

from absl import app, flags

from iac_jax.adaptation.finetuning import METHODS
from iac_jax.codec import models
from iac_jax.evaluation import sweep
from iac_jax.io import atomic_io, video

_VIDEOS = flags.DEFINE_list('videos', ['../shared/data/videos/bigbuckbunny.mp4',
                                       '../shared/data/videos/carphone_176x144.y4m'],
                            'Videos to code.')
_MODELS = flags.DEFINE_list('models', None, 'Models; default: every shipped model.')
_METHODS = flags.DEFINE_list('methods', ['none', 'encoder', 'full'],
                             f'Adaptation methods, of {list(METHODS)}.')
_STEPS = flags.DEFINE_integer('steps', 300, 'Adaptation steps.')
_CROP = flags.DEFINE_integer('crop_size', 256, 'Adaptation crop side (0: whole frames).')
_LR = flags.DEFINE_float('learning_rate', 1e-4, 'Adaptation learning rate.')
_IFRAMES = flags.DEFINE_list('iframes', ['0'], 'Code the first K I-frames (0: all); '
                             'several values sweep the number of frames.')
_IFRAME_FPS = flags.DEFINE_float('iframe_fps', 2.0, 'I-frames per second.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of crops and noise.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'results/adaptation', 'Output folder.')


def _read_rows(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def _write_rows(path: str, rows: list[dict]):
  out = io.StringIO()
  writer = csv.DictWriter(out, sweep.FIELDS, lineterminator='\n')
  writer.writeheader()
  writer.writerows(rows)
  atomic_io.write_bytes(path, out.getvalue().encode())


def main(argv):
  del argv
  std_logging.basicConfig(level=std_logging.INFO, format='%(message)s')
  log = std_logging.getLogger('rd_sweep')
  for m in _METHODS.value:
    if m not in METHODS:
      raise app.UsageError(f'unknown method {m!r}; known: {list(METHODS)}')
  names = _MODELS.value or models.shipped_models()
  csv_path = os.path.join(_OUTPUT_DIR.value, 'rd.csv')
  rows = _read_rows(csv_path)
  done = {(r['video'], r['iframes'], r['model'], r['method']) for r in rows}
  for path in _VIDEOS.value:
    all_frames, _ = video.read_video(path, _IFRAME_FPS.value)
    name = os.path.basename(path)
    for k in sorted({int(k) for k in _IFRAMES.value}):
      frames = all_frames[:k] if k else all_frames
      for model_name in names:
        model = models.load_model(model_name)
        for method in _METHODS.value:
          key = (name, str(len(frames)), model.name, method)
          if key in done:
            log.info('skip %s (already in %s)', key, csv_path)
            continue
          start = time.time()
          log.info('%s: %d I-frames, %s, %s ...', name, len(frames), model.name, method)
          stream = os.path.join(_OUTPUT_DIR.value, 'streams',
                                f'{os.path.splitext(name)[0]}.{len(frames)}.{model.name}.'
                                f'{method}.iac')
          os.makedirs(os.path.dirname(stream), exist_ok=True)
          row = sweep.run_point(model, name, frames, method, _STEPS.value, _CROP.value,
                                _LR.value, _SEED.value, stream_path=stream)
          rows.append(row)
          done.add(key)
          _write_rows(csv_path, rows)
          log.info('  bpp %.4f  PSNR %.2f dB  update %d bits  (%.0f s)', row['bpp'],
                   row['psnr_db'], row['update_bits'], time.time() - start)
  bd = sweep.bd_table(rows)
  summary = sweep.markdown(rows, bd)
  atomic_io.write_bytes(os.path.join(_OUTPUT_DIR.value, 'summary.md'), summary.encode())
  print(summary)


if __name__ == '__main__':
  app.run(main)
