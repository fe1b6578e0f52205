"""Training data: random crops of a folder of photos, batched as NumPy, prefetched.

A few dozen photos are decoded once into memory (41 photos of 1280px are ~130 MB);
a large folder is given as paths and each photo is decoded when a batch needs it.
Either way a background thread cuts random crops with random flips so that the
training step never waits on input.
"""

from __future__ import annotations

import glob
import os
import queue
import threading
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image

from iac_jax.io import image_io


def find_images(patterns: Sequence[str] | str) -> list[str]:
  """Sorted image files matching glob patterns or folders (PNG, JPEG, WebP)."""
  if isinstance(patterns, str):
    patterns = [p for p in patterns.split(',') if p]
  paths = set()
  for pattern in patterns:
    if os.path.isdir(pattern):
      pattern = os.path.join(pattern, '*')
    for path in glob.glob(pattern):
      if path.lower().endswith(('.png', '.jpg', '.jpeg', '.webp')):
        paths.add(path)
  return sorted(paths)


# The same as `iac_jax.io.image_io.load_rgb`, copied because this module imports nothing
# of iac_jax: benchmarks/compressai_parity_worker.py loads it by file in CompressAI's venv.
def load_rgb(path: str) -> np.ndarray:
  """uint8[H, W, 3] of an image file, converted to RGB."""
  with Image.open(path) as im:
    return np.asarray(im.convert('RGB'))


def scaled_window(height: int, width: int, size: int, min_scale: float,
                  rng: np.random.Generator) -> tuple[int, int, int]:
  """(top, left, side) of a square window inside a photo larger than `size`, whose
  side is `size / s` for a log-uniform scale s in [max(min_scale, size / short
  side), 1]: resized to `size`, it is a crop of the photo downscaled by s."""
  lowest = max(min_scale, size / min(height, width))
  scale = float(np.exp(rng.uniform(np.log(lowest), 0.0)))
  window = min(round(size / scale), height, width)
  top = int(rng.integers(0, height - window + 1))
  left = int(rng.integers(0, width - window + 1))
  return top, left, window


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator,
                min_scale: float = 1.0) -> np.ndarray:
  """A random `size` x `size` crop, randomly flipped; small images are reflect-padded.

  With `min_scale < 1` (scale augmentation) the photo is first downscaled by a random
  factor `s` in [min_scale, 1], log-uniform, but never below the crop: a square
  window of side `round(size / s)` inside the photo is cut and resized to `size`
  (Pillow's antialiased bicubic), as if the whole photo had been downscaled.
  """
  h, w, _ = image.shape
  if min_scale < 1.0 and min(h, w) > size:
    top, left, window = scaled_window(h, w, size, min_scale, rng)
    if window > size:
      patch = Image.fromarray(np.ascontiguousarray(
          image[top:top + window, left:left + window]))
      crop = np.asarray(patch.resize((size, size), Image.BICUBIC))
      return crop[:, ::-1] if rng.random() < 0.5 else crop
  if h < size or w < size:
    image = np.pad(image, ((0, max(size - h, 0)), (0, max(size - w, 0)), (0, 0)),
                   mode='reflect' if min(h, w) > 1 else 'edge')
    h, w, _ = image.shape
  top = rng.integers(0, h - size + 1)
  left = rng.integers(0, w - size + 1)
  crop = image[top:top + size, left:left + size]
  if rng.random() < 0.5:
    crop = crop[:, ::-1]
  return crop


def load_images(paths: Sequence[str], max_bytes: int = 1 << 30) -> list[np.ndarray | str]:
  """Decoded photos when they fit in `max_bytes` (estimated from the first few), else
  the paths themselves, which `CropStream` then decodes on demand."""
  if not paths:
    return []
  sample = [load_rgb(p) for p in paths[:4]]
  estimate = np.mean([a.nbytes for a in sample]) * len(paths)
  if estimate > max_bytes:
    return list(paths)
  return sample + [load_rgb(p) for p in paths[4:]]


def held_out_split(patterns: Sequence[str] | str, holdout: int = 2
                   ) -> tuple[list[str], list[str]]:
  """The photos `patterns` find, sorted, as (training, held out): the last `holdout`
  are held out, as the campaign keeps them."""
  paths = find_images(patterns)
  if len(paths) <= holdout:
    raise ValueError(f'found {len(paths)} images in {patterns!r}; need more than {holdout}')
  return paths[:len(paths) - holdout], paths[len(paths) - holdout:]


def load_split(patterns: Sequence[str] | str, holdout: int = 2, long_side: int = 512
               ) -> tuple[list[np.ndarray | str], list[np.ndarray]]:
  """`held_out_split`'s training photos (`load_images`) and its held-out photos
  downscaled to `long_side`, as the campaign evaluates them."""
  train, held = held_out_split(patterns, holdout)
  return (load_images(train),
          [image_io.downscale_long_side(load_rgb(p), long_side) for p in held])


class CropStream:
  """Endless batches float32[B, S, S, 3] in [0, 1] of random crops, prefetched
  (`random_crop`, with scale augmentation when `min_scale < 1`).

  `images` holds uint8[H, W, 3] arrays or paths to decode on demand (`load_images`).

  Batch `k` (counting from `start_step`) depends only on (`seed`, `start_step + k`),
  so a resumed run sees exactly the batches an uninterrupted run would have seen.
  Iterate it; call `close()` (or use it as a context manager) to stop the thread.
  """

  def __init__(self, images: Sequence[np.ndarray | str], batch_size: int, crop_size: int,
               seed: int, prefetch: int = 4, start_step: int = 0, min_scale: float = 1.0,
               workers: int = 1):
    if not images:
      raise ValueError('no training images')
    if workers < 1:
      raise ValueError(f'workers must be at least 1, got {workers}')
    self._images = list(images)
    self._batch_size = batch_size
    self._crop_size = crop_size
    self._min_scale = min_scale
    self._seed = seed
    self._start_step = start_step
    self._stop = threading.Event()
    # Worker j makes the batches of steps start + j, start + j + workers, ...; reading
    # the queues in turn gives them back in step order (Pillow's resize runs without
    # the GIL, so threads help where a fast device waits for crops).
    self._queues = [queue.Queue(maxsize=max(prefetch // workers, 1)) for _ in range(workers)]
    self._threads = [threading.Thread(target=self._fill, args=(j,), daemon=True)
                     for j in range(workers)]
    for thread in self._threads:
      thread.start()

  def batch(self, step: int) -> np.ndarray:
    """The batch of training step `step`."""
    rng = np.random.default_rng([self._seed, step])
    idx = rng.integers(0, len(self._images), self._batch_size)
    crops = [random_crop(self._image(i), self._crop_size, rng, self._min_scale)
             for i in idx]
    return np.stack(crops).astype(np.float32) / 255.0

  def _image(self, i: int) -> np.ndarray:
    image = self._images[i]
    return load_rgb(image) if isinstance(image, str) else image

  def _fill(self, worker: int):
    step = self._start_step + worker
    while not self._stop.is_set():
      batch = self.batch(step)
      step += len(self._queues)
      while not self._stop.is_set():
        try:
          self._queues[worker].put(batch, timeout=0.1)
          break
        except queue.Full:
          continue

  def __iter__(self) -> Iterator[np.ndarray]:
    while True:
      for q in self._queues:
        yield q.get()

  def close(self):
    self._stop.set()
    for thread in self._threads:
      thread.join(timeout=5)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
