"""Synthetic static-camera clips: a fixed camera watching a scene, made from photos.

The paper's motivating case is a camera that watches one scene for a long time, where
an update to the decoder is paid once and amortized over many frames. None of our
real clips is 1280x720 with 20 or more I-frames, so `clip` makes one from two photos:
the first, scaled to cover the frame and centre-cropped, is the scene; a square cut
from the second crosses it on a straight line (someone walking past); the light
drifts slowly (a gain of a few percent) and every frame gets its own sensor noise.
The frames are the clip's I-frames (2 fps in the codec's terms). Everything is a
function of the photos and the seed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def cover(photo: np.ndarray, height: int, width: int) -> np.ndarray:
  """uint8[H', W', 3] scaled (Lanczos) to cover height x width, centre-cropped to it."""
  h, w = photo.shape[:2]
  scale = max(height / h, width / w)
  size = (max(width, round(w * scale)), max(height, round(h * scale)))
  img = np.asarray(Image.fromarray(photo).resize(size, Image.LANCZOS))
  top, left = (img.shape[0] - height) // 2, (img.shape[1] - width) // 2
  return img[top:top + height, left:left + width]


def clip(scene: np.ndarray, passer: np.ndarray, frames: int = 20, height: int = 720,
         width: int = 1280, seed: int = 0, object_size: int = 192,
         light_drift: float = 0.04, noise_std: float = 1.5) -> np.ndarray:
  """uint8[frames, height, width, 3]: the static-camera clip described above.

  scene, passer: uint8 photos [H, W, 3]; object_size: side of the square that
  crosses the scene; light_drift: peak relative change of the light; noise_std:
  per-pixel Gaussian noise (0-255 scale), independent per frame.
  """
  if frames < 1 or height < 1 or width < 1 or not 0 < object_size <= min(height, width):
    raise ValueError(f'invalid clip size: {frames} frames of {height}x{width}, '
                     f'object {object_size}')
  rng = np.random.default_rng(seed)
  background = cover(scene, height, width).astype(np.float32)
  thing = cover(passer, object_size, object_size).astype(np.float32)
  # A straight path across the frame, entering at the left and leaving at the right.
  y0, y1 = rng.uniform(0, height - object_size, size=2)
  phase = rng.uniform(0, 2 * np.pi)
  out = np.empty((frames, height, width, 3), np.uint8)
  for i in range(frames):
    s = i / max(frames - 1, 1)
    frame = background * (1.0 + light_drift * np.sin(2 * np.pi * s + phase))
    top = int(round(y0 + (y1 - y0) * s))  # noqa: RUF046 (NumPy 1 rounds to a float)
    left = int(round(-object_size + (width + object_size) * s))  # noqa: RUF046
    a, b = max(left, 0), min(left + object_size, width)
    if a < b:
      frame[top:top + object_size, a:b] = thing[:, a - left:b - left]
    frame += rng.normal(0.0, noise_std, frame.shape).astype(np.float32)
    out[i] = np.clip(np.round(frame), 0, 255).astype(np.uint8)
  return out
