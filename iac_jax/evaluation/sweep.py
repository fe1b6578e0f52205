"""Adaptation sweeps: code videos with each model and method, from real bitstreams.

`run_point` codes one video's I-frames with one model and adaptation method and
checks that the decoder reproduces the encoder's frames; `bd_table` turns the
points of several models (rate points) into Bjontegaard deltas between methods.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence

import numpy as np

from iac_jax.adaptation import decoding
from iac_jax.adaptation.finetuning import AdaptationConfig, method_by_name
from iac_jax.adaptation.video_codec import encode_video_detailed
from iac_jax.codec.models import Model, default_beta
from iac_jax.evaluation import metrics
from iac_jax.io import atomic_io

FIELDS = ('video', 'iframes', 'model', 'beta', 'method', 'steps', 'bpp', 'psnr_db',
          'update_bits', 'static_bits', 'frame_bits', 'seconds')


def run_point(model: Model, video_name: str, frames: np.ndarray, method: str, steps: int,
              crop_size: int = 256, learning_rate: float = 1e-4, seed: int = 0,
              progress: Callable[[int, dict], None] | None = None,
              stream_path: str | None = None) -> dict:
  """Codes uint8 frames[T, H, W, 3] (the I-frames) and measures the real bitstream,
  which is also written (atomically) to `stream_path` when given."""
  beta = default_beta(model)
  config = AdaptationConfig(method=method,
                            steps=steps if method_by_name(method).uses_steps else 0,
                            learning_rate=learning_rate, beta=beta, crop_size=crop_size)
  enc = encode_video_detailed(model, frames, 2.0, config, seed=seed, progress=progress)
  decoded = decoding.decode(enc.data, model)
  if not np.array_equal(decoded, enc.reconstruction):
    raise AssertionError(f'{video_name} {model.name} {method}: decoder output differs '
                         'from the encoder\'s reconstruction')
  if stream_path:
    atomic_io.write_bytes(stream_path, enc.data)
  t, h, w, _ = frames.shape
  return {'video': video_name, 'iframes': t, 'model': model.name, 'beta': beta,
          'method': method, 'steps': config.steps,
          'bpp': metrics.bpp(len(enc.data), t * h * w),
          'psnr_db': metrics.mean_psnr_db(frames, decoded), 'update_bits': enc.update_bits,
          'static_bits': enc.static_bits, 'frame_bits': int(np.sum(enc.frame_bits)),
          'seconds': round(enc.total_seconds, 1)}


def bd_table(rows: Sequence[dict], test: str = 'full',
             anchors: Sequence[str] = ('none', 'encoder')) -> list[dict]:
  """BD-rate (%) and BD-PSNR (dB) of `test` against each anchor method, per
  (video, iframes), over the models (rate points) both were run with."""
  curves = collections.defaultdict(dict)
  for r in rows:
    curves[(r['video'], int(r['iframes']), r['method'])][r['model']] = (
        float(r['bpp']), float(r['psnr_db']))
  out = []
  for (video_name, iframes, method), points in sorted(curves.items()):
    if method != test:
      continue
    for anchor in anchors:
      base = curves.get((video_name, iframes, anchor), {})
      shared = sorted(set(points) & set(base))
      if len(shared) < 2:
        continue
      ra, pa = zip(*(base[m] for m in shared))
      rb, pb = zip(*(points[m] for m in shared))
      out.append({'video': video_name, 'iframes': iframes, 'test': test, 'anchor': anchor,
                  'points': len(shared), 'bd_rate_pct': metrics.bd_rate(ra, pa, rb, pb),
                  'bd_psnr_db': metrics.bd_psnr(ra, pa, rb, pb),
                  'monotonic': (metrics.rises_with_rate(ra, pa) and
                                metrics.rises_with_rate(rb, pb))})
  return out


def markdown(rows: Sequence[dict], bd: Sequence[dict]) -> str:
  """The points (one line per video, I-frames, model, method) and the BD table."""
  lines = [('| video | I-frames | model | method | bpp (incl. update) | PSNR (dB) | '
            'update bits | static bits | seconds |'), '|---|---|---|---|---|---|---|---|---|']
  key = lambda r: (r['video'], int(r['iframes']), float(r['beta']), r['method'])
  for r in sorted(rows, key=key):
    lines.append(f"| {r['video']} | {r['iframes']} | {r['model']} | {r['method']} | "
                 f"{float(r['bpp']):.4f} | {float(r['psnr_db']):.2f} | {r['update_bits']} | "
                 f"{float(r['static_bits']):.0f} | {r['seconds']} |")
  if bd:
    lines += ['', ('| video | I-frames | test | anchor | rate points | BD-rate | BD-PSNR | '
                   'both curves monotonic |'), '|---|---|---|---|---|---|---|---|']
    for b in bd:
      lines.append(f"| {b['video']} | {b['iframes']} | {b['test']} | {b['anchor']} | "
                   f"{b['points']} | {b['bd_rate_pct']:+.1f}% | {b['bd_psnr_db']:+.3f} dB | "
                   f"{'yes' if b['monotonic'] else 'no: unreliable'} |")
  return '\n'.join(lines) + '\n'
