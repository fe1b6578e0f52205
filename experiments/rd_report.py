"""RD report of global models on video I-frames and held-out photos, with JPEG and WebP.

  .venv/bin/python experiments/rd_report.py --output_dir=results/global_models

Writes rd.csv (every frame and setting), summary.csv, summary.md (learned points
with JPEG/WebP PSNR at the same rate) and rd.png to --output_dir.
"""

from __future__ import annotations

import logging as std_logging

from absl import app, flags

from iac_jax.codec import models
from iac_jax.evaluation import classical, rd_report

_MODELS = flags.DEFINE_list('models', None, 'Models (shipped names or .msgpack paths); '
                            'default: every shipped model.')
_VIDEOS = flags.DEFINE_list('videos', ['../shared/data/videos/bigbuckbunny.mp4',
                                       '../shared/data/videos/carphone_176x144.y4m'],
                            'Videos whose I-frames are coded.')
_IMAGES = flags.DEFINE_list('images', ['../shared/data/train_images/skimage_rocket.png',
                                       '../shared/data/train_images/skimage_retina.png'],
                            'Photos not used for training.')
_LONG_SIDE = flags.DEFINE_integer('image_long_side', 512, 'Photos are downscaled to this '
                                  'long side first (0: native size).')
_IFRAME_FPS = flags.DEFINE_float('iframe_fps', 2.0, 'I-frames per second of video.')
_MAX_FRAMES = flags.DEFINE_integer('max_frames', 0, 'At most this many I-frames per video '
                                   '(0: all).')
_QUALITIES = flags.DEFINE_list('qualities', [str(q) for q in classical.DEFAULT_QUALITIES],
                               'JPEG and WebP quality settings.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'results/global_models', 'Output folder.')


def main(argv):
  del argv
  std_logging.basicConfig(level=std_logging.INFO, format='%(message)s')
  log = std_logging.getLogger('rd_report')
  names = _MODELS.value or models.shipped_models()
  loaded = [models.load_model(n) for n in names]
  sources = rd_report.load_sources(_VIDEOS.value, _IMAGES.value, _IFRAME_FPS.value,
                                   _MAX_FRAMES.value, _LONG_SIDE.value)
  log.info('%d models, sources: %s', len(loaded),
           ', '.join(f'{s.name} ({len(s.frames)} frames)' for s in sources))
  rows = rd_report.measure(loaded, sources, [int(q) for q in _QUALITIES.value],
                           progress=log.info)
  summary = rd_report.write(rows, _OUTPUT_DIR.value,
                            title='global models vs JPEG/WebP (real bitstreams)')
  print(rd_report.markdown_table(summary))


if __name__ == '__main__':
  app.run(main)
