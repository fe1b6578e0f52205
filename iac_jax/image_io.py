"""Reading and writing still images (PNG, JPEG, ...) with clear errors."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from iac_jax import atomic_io


def read_image(path: str) -> np.ndarray:
  """uint8[H, W, C] with C in {1, 3, 4} as stored (palette images become RGB/RGBA)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'input file not found: {path}')
  try:
    with Image.open(path) as im:
      if im.mode in ('P', 'PA', 'CMYK', 'YCbCr', 'LAB', 'HSV'):
        im = im.convert('RGBA' if 'A' in im.mode or 'transparency' in im.info else 'RGB')
      elif im.mode in ('I;16', 'I', 'F', '1'):
        im = im.convert('L')
      elif im.mode == 'LA':
        im = im.convert('RGBA')
      return np.asarray(im)
  except (UnidentifiedImageError, OSError) as e:
    raise ValueError(f'cannot read image {path}: {e}') from None


def write_png(path: str, image: np.ndarray) -> None:
  """Writes uint8[H, W, 3] as PNG, atomically."""
  buf = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buf, format='PNG')
  atomic_io.write_bytes(path, buf.getvalue())
