"""Adapts and codes many videos: one compiled batch per bucket, sharded over devices.

One host, all its devices:

  .venv/bin/python experiments/adapt_videos.py --videos='clips/*.mp4' \
      --model=small-beta100 --method=full --steps=300 --output_dir=out \
      --videos_per_device=2

Several hosts (run the same command on each; host i takes videos i, i+P, ...):

  python experiments/adapt_videos.py --distributed --coordinator=HOST0:1234 \
      --num_processes=P --process_id=i --videos='clips/*.mp4' --output_dir=out

On Cloud TPU pods `--distributed` alone suffices (jax.distributed.initialize finds
the coordinator itself). Each host adapts its share on its own devices and writes
one bitstream per video plus `summary.<process_id>.csv` (one `summary.csv` with a
single host). Rerunning skips videos whose bitstream exists and passes its checks.
"""

from __future__ import annotations

import csv
import glob
import io
import logging as std_logging
import os
import time

import jax
from absl import app, flags

from iac_jax.adaptation.finetuning import METHODS, AdaptationConfig
from iac_jax.adaptation.video_codec import encode_videos
from iac_jax.codec import bitstream, models
from iac_jax.demo import psnr_of_frames
from iac_jax.evaluation import metrics
from iac_jax.io import atomic_io, video

_VIDEOS = flags.DEFINE_list('videos', None, 'Video files or globs (y4m, mp4, ...).',
                            required=True)
_MODEL = flags.DEFINE_string('model', models.DEFAULT_MODEL, 'Shipped name or .msgpack path.')
_METHOD = flags.DEFINE_enum('method', 'full', list(METHODS), 'Adaptation method.')
_STEPS = flags.DEFINE_integer('steps', 300, 'Adaptation steps.')
_LR = flags.DEFINE_float('learning_rate', 1e-4, 'Adaptation learning rate.')
_CROP = flags.DEFINE_integer('crop_size', 256, 'Crop side (0: whole frames).')
_IFRAME_FPS = flags.DEFINE_float('iframe_fps', 2.0, 'I-frames per second.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of every video.')
_PER_DEVICE = flags.DEFINE_integer('videos_per_device', 1, 'Videos per device per batch.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Output folder.', required=True)
_DISTRIBUTED = flags.DEFINE_bool('distributed', False, 'Call jax.distributed.initialize.')
_COORDINATOR = flags.DEFINE_string('coordinator', None, 'host:port of process 0.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Number of hosts.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This host\'s index.')

_FIELDS = ('video', 'frames', 'width', 'height', 'bpp', 'psnr_db', 'update_bits', 'seconds')


def _expand(patterns: list[str]) -> list[str]:
  paths = []
  for p in patterns:
    matches = sorted(glob.glob(p)) if any(c in p for c in '*?[') else [p]
    if not matches:
      raise app.UsageError(f'no file matches {p!r}')
    paths += matches
  return sorted(dict.fromkeys(paths))


def _finished(path: str) -> bool:
  """A bitstream that exists and passes the container's checks (sizes, CRCs)."""
  if not os.path.exists(path):
    return False
  try:
    with open(path, 'rb') as f:
      bitstream.unpack(f.read())
    return True
  except (bitstream.BitstreamError, OSError):
    return False


def main(argv):
  del argv
  std_logging.basicConfig(level=std_logging.INFO, format='%(message)s')
  log = std_logging.getLogger('adapt_videos')
  if _DISTRIBUTED.value:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  host, hosts = jax.process_index(), jax.process_count()
  paths = _expand(_VIDEOS.value)[host::hosts]
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  out_path = lambda p: os.path.join(_OUTPUT_DIR.value,
                                    os.path.splitext(os.path.basename(p))[0] + '.iac')
  todo = [p for p in paths if not _finished(out_path(p))]
  log.info('host %d/%d: %d videos, %d already done, %d local devices (%s)', host, hosts,
           len(paths), len(paths) - len(todo), jax.local_device_count(),
           jax.default_backend())
  model = models.load_model(_MODEL.value)
  config = AdaptationConfig(method=_METHOD.value, steps=_STEPS.value,
                            learning_rate=_LR.value, crop_size=_CROP.value,
                            beta=models.default_beta(model))
  clips = []
  for p in todo:
    frames, fps = video.read_video(p, _IFRAME_FPS.value)
    clips.append((p, frames, fps))
  start = time.time()
  last = [0.0]

  def progress(batch, batches, steps):
    if time.time() - last[0] > 10 or steps == config.steps:
      last[0] = time.time()
      log.info('batch %d/%d: step %d/%d (%.0f s)', batch + 1, batches, steps, config.steps,
               time.time() - start)

  rows = []
  if clips:
    encodings = encode_videos(model, [c[1] for c in clips], [2.0] * len(clips), config,
                              [_SEED.value] * len(clips), videos_per_device=_PER_DEVICE.value,
                              progress=progress)
    for (p, frames, _), enc in zip(clips, encodings):
      atomic_io.write_bytes(out_path(p), enc.data)
      t, h, w, _ = frames.shape
      rows.append({'video': os.path.basename(p), 'frames': t, 'width': w, 'height': h,
                   'bpp': round(metrics.bpp(len(enc.data), t * h * w), 5),
                   'psnr_db': round(psnr_of_frames(frames, enc.reconstruction), 3),
                   'update_bits': enc.update_bits, 'seconds': round(enc.total_seconds, 1)})
      r = rows[-1]
      log.info('%s: %d frames, %.4f bpp, %.2f dB, update %d bits', r['video'], r['frames'],
               r['bpp'], r['psnr_db'], r['update_bits'])
  summary = os.path.join(_OUTPUT_DIR.value,
                         'summary.csv' if hosts == 1 else f'summary.{host}.csv')
  old = []
  if os.path.exists(summary):
    with open(summary, newline='') as f:
      done = {r['video'] for r in rows}
      old = [r for r in csv.DictReader(f) if r['video'] not in done]
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, _FIELDS, lineterminator='\n')
  writer.writeheader()
  writer.writerows(sorted(old + rows, key=lambda r: r['video']))
  atomic_io.write_bytes(summary, buffer.getvalue().encode())
  log.info('done: %d videos coded in %.0f s; %s', len(rows), time.time() - start, summary)


if __name__ == '__main__':
  app.run(main)
