"""Classical image codecs as reference points: JPEG and WebP through Pillow.

Each is run at a quality setting on an RGB uint8 image; the rate is the size of the
file Pillow writes and the distortion is measured on the decoded RGB image, so
each codec's own colour conversion and chroma subsampling count against it.
Pillow's defaults are kept otherwise (JPEG with 4:2:0 chroma, WebP lossy, method 4).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from iac_jax import metrics

FORMATS = ('jpeg', 'webp')
DEFAULT_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)


def compress(image: np.ndarray, fmt: str, quality: int) -> tuple[bytes, np.ndarray]:
  """The file bytes and the decoded uint8[H, W, 3] of `image` in `fmt` at `quality`."""
  if fmt not in FORMATS:
    raise ValueError(f'unknown format {fmt!r}; known: {FORMATS}')
  if not 0 <= quality <= 100:
    raise ValueError(f'quality must be in 0..100, got {quality}')
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format=fmt.upper(),
                                                     quality=int(quality))
  data = buffer.getvalue()
  with Image.open(io.BytesIO(data)) as decoded:
    return data, np.asarray(decoded.convert('RGB'))


def rd_point(image: np.ndarray, fmt: str, quality: int) -> dict:
  """bpp and PSNR of one image in one format at one quality."""
  data, decoded = compress(image, fmt, quality)
  h, w = image.shape[:2]
  return {'codec': fmt, 'setting': f'q{quality}', 'bpp': metrics.bpp(len(data), h * w),
          'psnr_db': metrics.psnr_db(image, decoded)}


def psnr_at_rate(bpps, psnrs, bpp: float) -> float:
  """PSNR of an RD curve at `bpp`, linear in bpp between measured points; NaN outside."""
  order = np.argsort(bpps)
  x, y = np.asarray(bpps, float)[order], np.asarray(psnrs, float)[order]
  if len(x) == 0 or bpp < x[0] or bpp > x[-1]:
    return float('nan')
  return float(np.interp(bpp, x, y))
