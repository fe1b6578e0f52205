"""The main job until video adaptation lands: code the shipped sample image."""

from __future__ import annotations

import dataclasses
import os
import time

from iac_jax import atomic_io, codec, image_io, metrics
from iac_jax.models import Model

SAMPLE_IMAGE = os.path.join(os.path.dirname(__file__), 'samples', 'rocket.png')


@dataclasses.dataclass(frozen=True)
class DemoResult:
  model: str
  image: str
  width: int
  height: int
  num_bytes: int
  bpp: float
  psnr_db: float
  encode_s: float
  decode_s: float
  bitstream_path: str
  decoded_path: str


def run_demo(model: Model, output_dir: str, image_path: str = SAMPLE_IMAGE) -> DemoResult:
  """Encodes `image_path`, writes the bitstream and its decoding, measures both."""
  image = codec.as_rgb_uint8(image_io.read_image(image_path))
  t0 = time.perf_counter()
  data = codec.encode_image(model, image)
  t1 = time.perf_counter()
  decoded = codec.decode(data, model)[0]
  t2 = time.perf_counter()
  os.makedirs(output_dir, exist_ok=True)
  stem = os.path.splitext(os.path.basename(image_path))[0]
  bitstream_path = os.path.join(output_dir, stem + '.iac')
  decoded_path = os.path.join(output_dir, stem + '.decoded.png')
  atomic_io.write_bytes(bitstream_path, data)
  image_io.write_png(decoded_path, decoded)
  h, w, _ = image.shape
  return DemoResult(model.name, image_path, w, h, len(data),
                    metrics.bpp(len(data), h * w), metrics.psnr_db(image, decoded),
                    t1 - t0, t2 - t1, bitstream_path, decoded_path)
