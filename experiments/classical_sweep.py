"""Classical references on the same I-frames as rd_sweep: JPEG, WebP, x264/x265 intra.

  .venv/bin/python experiments/classical_sweep.py --output_dir=results/adaptation

Writes <output_dir>/classical.csv (video, iframes, codec, setting, bpp, psnr_db,
ms_ssim): one row per video and codec setting, measured on the I-frames that
rd_sweep codes (2 per second), the rate counting every byte of every frame.
"""

from __future__ import annotations

import csv
import io
import logging as std_logging
import os

from absl import app, flags

from iac_jax import atomic_io, classical, video

_VIDEOS = flags.DEFINE_list('videos', ['../shared/data/videos/bigbuckbunny.mp4',
                                       '../shared/data/videos/carphone_176x144.y4m'],
                            'Videos whose I-frames to code.')
_CODECS = flags.DEFINE_list('codecs', ['jpeg', 'webp', 'x264', 'x265'], 'Codecs.')
_QUALITIES = flags.DEFINE_list('qualities', [str(q) for q in classical.DEFAULT_QUALITIES],
                               'JPEG/WebP qualities.')
_QPS = flags.DEFINE_list('qps', [str(q) for q in classical.DEFAULT_QPS], 'x264/x265 QPs.')
_IFRAME_FPS = flags.DEFINE_float('iframe_fps', 2.0, 'I-frames per second.')
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
  rows = []
  for path in _VIDEOS.value:
    frames, _ = video.read_video(path, _IFRAME_FPS.value)
    name = os.path.basename(path)
    for codec in _CODECS.value:
      settings = _QUALITIES.value if codec in classical.FORMATS else _QPS.value
      for setting in settings:
        row = {'video': name, 'iframes': len(frames),
               **classical.frames_rd_point(frames, codec, int(setting))}
        log.info('%s %s %s: %.4f bpp, %.2f dB', name, codec, row['setting'], row['bpp'],
                 row['psnr_db'])
        rows.append(row)
  out = io.StringIO()
  writer = csv.DictWriter(out, FIELDS, lineterminator='\n')
  writer.writeheader()
  writer.writerows(rows)
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  path = os.path.join(_OUTPUT_DIR.value, 'classical.csv')
  atomic_io.write_bytes(path, out.getvalue().encode())
  log.info('wrote %d rows to %s', len(rows), path)


if __name__ == '__main__':
  app.run(main)
