"""Quality and rate measures on 8-bit images."""

from __future__ import annotations

import numpy as np


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
  """PSNR in dB between two uint8 images of equal shape (RGB, peak 255)."""
  if a.shape != b.shape:
    raise ValueError(f'shapes differ: {a.shape} vs {b.shape}')
  mse = np.mean(np.square(a.astype(np.float64) - b.astype(np.float64)))
  return float('inf') if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def bpp(num_bytes: int, num_pixels: int) -> float:
  """Bits per pixel of a file of `num_bytes` bytes covering `num_pixels` pixels."""
  return 8.0 * num_bytes / num_pixels
