"""Rate-distortion report of global models against JPEG and WebP on the same frames.

Every learned point is measured from a real bitstream (encode, decode, count bytes);
JPEG and WebP from the files Pillow writes. Per source, rates are pooled over its
frames (total bits / total pixels) and PSNR is the mean of the frames' PSNRs.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import os
from collections.abc import Callable, Sequence

import numpy as np

from iac_jax.adaptation import decoding
from iac_jax.codec import image_codec
from iac_jax.codec.models import Model
from iac_jax.evaluation import classical, metrics
from iac_jax.io import atomic_io, image_io, video

FIELDS = ('source', 'frame', 'codec', 'setting', 'bpp', 'psnr_db', 'pixels')


@dataclasses.dataclass(frozen=True)
class Source:
  name: str
  frames: np.ndarray  # uint8[T, H, W, 3]


def load_sources(video_paths: Sequence[str], image_paths: Sequence[str],
                 iframe_fps: float = 2.0, max_frames: int = 0,
                 image_long_side: int = 0) -> list[Source]:
  """Videos (their I-frames at `iframe_fps`) and photos, each a source; photos are
  downscaled to `image_long_side` first when it is given (0: as they are)."""
  sources = []
  for path in video_paths:
    frames, _ = video.read_video(path, iframe_fps)
    sources.append(Source(os.path.basename(path), frames[:max_frames or None]))
  for path in image_paths:
    image = image_io.load_rgb(path)
    if image_long_side:
      image = image_io.downscale_long_side(image, image_long_side)
    sources.append(Source(os.path.basename(path), image[None]))
  return sources


def measure(models: Sequence[Model], sources: Sequence[Source],
            qualities: Sequence[int] = classical.DEFAULT_QUALITIES,
            progress: Callable[[str], None] = lambda _: None) -> list[dict]:
  """One row per (source, frame, codec, setting)."""
  rows = []
  for source in sources:
    for i, frame in enumerate(source.frames):
      pixels = frame.shape[0] * frame.shape[1]
      for model in models:
        stream = image_codec.encode_image(model, frame)
        decoded = decoding.decode(stream, model)[0]
        rows.append({'source': source.name, 'frame': i, 'codec': 'iac-jax',
                     'setting': model.name, 'bpp': metrics.bpp(len(stream), pixels),
                     'psnr_db': metrics.psnr_db(frame, decoded), 'pixels': pixels})
      for fmt in classical.FORMATS:
        for q in qualities:
          rows.append({'source': source.name, 'frame': i, 'pixels': pixels,
                       **classical.rd_point(frame, fmt, q)})
      progress(f'{source.name}: frame {i + 1}/{len(source.frames)}')
  return rows


def summarize(rows: Sequence[dict]) -> list[dict]:
  """Per (source, codec, setting): pooled bpp, mean PSNR; learned points also get
  JPEG's and WebP's PSNR at the same rate (interpolated on their curves; NaN where
  the rate is outside the qualities measured) and, where the rate is below the
  curve's lowest, that format's smallest file (`{fmt}_smallest_bpp`, `_psnr_db`)."""
  groups = collections.defaultdict(list)
  for r in rows:
    groups[(r['source'], r['codec'], r['setting'])].append(r)
  summary = []
  for (source, codec_name, setting), rs in groups.items():
    bits = sum(r['bpp'] * r['pixels'] for r in rs)
    summary.append({'source': source, 'codec': codec_name, 'setting': setting,
                    'frames': len(rs), 'bpp': bits / sum(r['pixels'] for r in rs),
                    'psnr_db': float(np.mean([r['psnr_db'] for r in rs]))})
  for s in summary:
    if s['codec'] != 'iac-jax':
      continue
    for fmt in classical.FORMATS:
      curve = [t for t in summary if t['source'] == s['source'] and t['codec'] == fmt]
      bpps, psnrs = [t['bpp'] for t in curve], [t['psnr_db'] for t in curve]
      s[f'{fmt}_psnr_at_rate'] = classical.psnr_at_rate(bpps, psnrs, s['bpp'])
      if curve and s['bpp'] < min(bpps):
        s[f'{fmt}_smallest_bpp'], s[f'{fmt}_smallest_psnr_db'] = (
            classical.smallest_file(bpps, psnrs))
  return summary


def _csv(rows: Sequence[dict], fields: Sequence[str]) -> bytes:
  out = io.StringIO()
  writer = csv.DictWriter(out, fields, extrasaction='ignore', lineterminator='\n')
  writer.writeheader()
  writer.writerows(rows)
  return out.getvalue().encode()


def _classical_cell(point: dict, fmt: str) -> str:
  if f'{fmt}_smallest_bpp' in point:
    return (f"none; its smallest: {point[f'{fmt}_smallest_bpp']:.4f} bpp, "
            f"{point[f'{fmt}_smallest_psnr_db']:.2f}")
  v = point[f'{fmt}_psnr_at_rate']
  return 'outside' if np.isnan(v) else f'{v:.2f}'


def markdown_table(summary: Sequence[dict]) -> str:
  """The learned points with JPEG and WebP at matched rates; below a format's range,
  its smallest file instead (a larger file: as PSNR falls with the rate, no better
  than what the format would give at ours)."""
  lines = [('| source | model | frames | bpp | PSNR (dB) | JPEG PSNR at same bpp | '
            'WebP PSNR at same bpp |'), '|---|---|---|---|---|---|---|']
  for s in sorted((s for s in summary if s['codec'] == 'iac-jax'),
                  key=lambda s: (s['source'], s['bpp'])):
    lines.append(f"| {s['source']} | {s['setting']} | {s['frames']} | {s['bpp']:.4f} | "
                 f"{s['psnr_db']:.2f} | {_classical_cell(s, 'jpeg')} | "
                 f"{_classical_cell(s, 'webp')} |")
  return '\n'.join(lines) + '\n'


def plot(summary: Sequence[dict], path: str, title: str = '') -> None:
  """PSNR vs bpp per source (PNG)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  sources = sorted({s['source'] for s in summary})
  fig, axes = plt.subplots(1, len(sources), figsize=(5 * len(sources), 4), squeeze=False)
  for ax, source in zip(axes[0], sources):
    for codec_name, style in (('iac-jax', 'o-'), ('webp', 's--'), ('jpeg', '^:')):
      pts = sorted((s['bpp'], s['psnr_db']) for s in summary
                   if s['source'] == source and s['codec'] == codec_name)
      if pts:
        ax.plot(*zip(*pts), style, label=codec_name if codec_name != 'iac-jax'
                else 'iac-jax global models')
    ax.set_title(source)
    ax.set_xlabel('rate (bits per pixel)')
    ax.set_ylabel('PSNR RGB (dB)')
    ax.set_xlim(0, 1.6)
    ax.grid(alpha=0.3)
    ax.legend()
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png', dpi=100)
  plt.close(fig)
  atomic_io.write_bytes(path, buffer.getvalue())


def write(rows: Sequence[dict], output_dir: str, title: str = '') -> list[dict]:
  """Writes rd.csv, summary.csv, summary.md and rd.png; returns the summary."""
  summary = summarize(rows)
  atomic_io.write_bytes(os.path.join(output_dir, 'rd.csv'), _csv(rows, FIELDS))
  fields = ('source', 'codec', 'setting', 'frames', 'bpp', 'psnr_db', 'jpeg_psnr_at_rate',
            'webp_psnr_at_rate', 'jpeg_smallest_bpp', 'jpeg_smallest_psnr_db',
            'webp_smallest_bpp', 'webp_smallest_psnr_db')
  atomic_io.write_bytes(os.path.join(output_dir, 'summary.csv'), _csv(summary, fields))
  atomic_io.write_bytes(os.path.join(output_dir, 'summary.md'),
                        markdown_table(summary).encode())
  plot(summary, os.path.join(output_dir, 'rd.png'), title)
  return summary
