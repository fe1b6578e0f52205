"""Reading and writing still images (PNG, JPEG, ...) with clear errors."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from iac_jax.io import atomic_io


def read_image(path: str) -> np.ndarray:
  """uint8[H, W, C] with C in {1, 3, 4} as stored (palette images become RGB/RGBA,
  16-bit grayscale is scaled to 8 bits; 32-bit integer and float images are refused)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'input file not found: {path}')
  try:
    with Image.open(path) as im:
      if im.mode.startswith('I;16') or (im.mode == 'I' and im.format == 'PNG'):
        # 16-bit grayscale (older Pillow opens it as I): rescale, do not clip at 255.
        return np.round(np.asarray(im, np.float64) / 257.0).astype(np.uint8)
      if im.mode in ('I', 'F'):  # 32-bit integer or float: no known white level
        raise ValueError(f'unsupported pixel format in {path}: {im.mode} (32-bit '
                         f'{"float" if im.mode == "F" else "integer"}) images are not '
                         'read; convert to 8- or 16-bit RGB or grayscale')
      if im.mode in ('P', 'PA', 'CMYK', 'YCbCr', 'LAB', 'HSV'):
        im = im.convert('RGBA' if 'A' in im.mode or 'transparency' in im.info else 'RGB')
      elif im.mode == '1':
        im = im.convert('L')
      elif im.mode == 'LA':
        im = im.convert('RGBA')
      return np.asarray(im)
  except (UnidentifiedImageError, OSError) as e:
    raise ValueError(f'cannot read image {path}: {e}') from None


def load_rgb(path: str) -> np.ndarray:
  """uint8[H, W, 3] of an image file, converted to RGB."""
  with Image.open(path) as im:
    return np.asarray(im.convert('RGB'))


def write_png(path: str, image: np.ndarray) -> None:
  """Writes uint8[H, W, 3] as PNG, atomically."""
  buf = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buf, format='PNG')
  atomic_io.write_bytes(path, buf.getvalue())


def downscale_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
  """uint8[H, W, 3] downscaled (antialiased bicubic) so its long side is `long_side`."""
  h, w, _ = image.shape
  if max(h, w) <= long_side:
    return image
  s = long_side / max(h, w)
  size = (max(1, round(w * s)), max(1, round(h * s)))
  return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))
