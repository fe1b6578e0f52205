"""Classical references on the same I-frames as rd_sweep: JPEG, WebP, x264/x265 intra.

  .venv/bin/python experiments/classical_sweep.py --output_dir=results/adaptation

Writes <output_dir>/classical.csv (video, iframes, codec, setting, bpp, psnr_db,
ms_ssim): one row per video and codec setting, measured on the I-frames that
rd_sweep codes (2 per second), the rate counting every byte of every frame.
Resumable: the file is rewritten after every point, and points in it are skipped.
MS-SSIM costs a few seconds per 720p frame here, so it is off unless --ms_ssim.
"""

from __future__ import annotations

import csv
import io
import logging as std_logging
import os

from absl import app, flags

from iac_jax.evaluation import classical
from iac_jax.io import atomic_io, video

_VIDEOS = flags.DEFINE_list('videos', ['../shared/data/videos/bigbuckbunny.mp4',
                                       '../shared/data/videos/carphone_176x144.y4m'],
                            'Videos whose I-frames to code.')
_CODECS = flags.DEFINE_list('codecs', ['jpeg', 'webp', 'x264', 'x265'], 'Codecs.')
_QUALITIES = flags.DEFINE_list('qualities', [str(q) for q in classical.DEFAULT_QUALITIES],
                               'JPEG/WebP qualities.')
_QPS = flags.DEFINE_list('qps', [str(q) for q in classical.DEFAULT_QPS], 'x264/x265 QPs.')
_IFRAME_FPS = flags.DEFINE_float('iframe_fps', 2.0, 'I-frames per second.')
_MS_SSIM = flags.DEFINE_bool('ms_ssim', False, 'Also measure MS-SSIM (slow).')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'results/adaptation', 'Output folder.')

FIELDS = ('video', 'iframes', 'codec', 'setting', 'bpp', 'psnr_db', 'ms_ssim')


def main(argv):
  del argv
  std_logging.basicConfig(level=std_logging.INFO, format='%(message)s')
  log = std_logging.getLogger('classical_sweep')
  known = classical.FORMATS + classical.VIDEO_CODECS
  for c in _CODECS.value:
    if c not in known:
      raise app.UsageError(f'unknown codec {c!r}; known: {list(known)}')
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  csv_path = os.path.join(_OUTPUT_DIR.value, 'classical.csv')
  rows = []
  if os.path.exists(csv_path):
    with open(csv_path, newline='') as f:
      rows = list(csv.DictReader(f))
  done = {(r['video'], str(r['iframes']), r['codec'], r['setting']) for r in rows}
  for path in _VIDEOS.value:
    frames, _ = video.read_video(path, _IFRAME_FPS.value)
    name = os.path.basename(path)
    for codec in _CODECS.value:
      image_codec = codec in classical.FORMATS
      for setting in _QUALITIES.value if image_codec else _QPS.value:
        key = (name, str(len(frames)), codec, f'{"q" if image_codec else "qp"}{setting}')
        if key in done:
          continue
        row = {'video': name, 'iframes': len(frames),
               **classical.frames_rd_point(frames, codec, int(setting), _MS_SSIM.value)}
        log.info('%s %s %s: %.4f bpp, %.2f dB', name, codec, row['setting'], row['bpp'],
                 row['psnr_db'])
        rows.append(row)
        _write(csv_path, rows)
  log.info('%d points in %s', len(rows), csv_path)


def _write(path: str, rows: list[dict]) -> None:
  out = io.StringIO()
  writer = csv.DictWriter(out, FIELDS, lineterminator='\n')
  writer.writeheader()
  writer.writerows(rows)
  atomic_io.write_bytes(path, out.getvalue().encode())


if __name__ == '__main__':
  app.run(main)
