"""The main job: adapt the shipped model to the sample clip and compare methods.

For each method the clip's I-frames are encoded to a real bitstream, decoded, and
measured: total bpp (update and frame sections, real bytes), PSNR (mean over
frames, RGB, 8 bit), update bits and encode time.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import numpy as np

from iac_jax.adaptation import decoding
from iac_jax.adaptation.finetuning import AdaptationConfig, config_for_effort
from iac_jax.adaptation.video_codec import encode_video_detailed
from iac_jax.codec.models import Model, default_beta
from iac_jax.evaluation import metrics
from iac_jax.io import atomic_io, video

SAMPLES = os.path.join(os.path.dirname(__file__), 'samples')
SAMPLE_IMAGE = os.path.join(SAMPLES, 'rocket.png')
SAMPLE_VIDEO = os.path.join(SAMPLES, 'bigbuckbunny.mp4')


@dataclasses.dataclass(frozen=True)
class DemoRow:
  method: str
  frames: int
  total_bpp: float
  psnr_db: float
  update_bits: int
  static_bits: float
  encode_s: float
  bitstream_path: str


def psnr_of_frames(original: np.ndarray, decoded: np.ndarray) -> float:
  """Mean over frames of the RGB PSNR (METHOD.md section 6)."""
  return metrics.mean_psnr_db(original, decoded)


def run_video_demo(model: Model, output_dir: str, video_path: str = SAMPLE_VIDEO,
                   methods: Sequence[str] = ('none', 'encoder', 'full'),
                   config: AdaptationConfig | None = None,
                   progress: Callable[[str, int, dict], None] | None = None
                   ) -> list[DemoRow]:
  """Codes the clip's I-frames with each method; writes bitstreams and decoded frames.

  `config` sets how to adapt (default: `config_for_effort('default')`); its method and
  beta are replaced by each method's and the model's.
  """
  frames, _ = video.read_video(video_path)
  t, h, w, _ = frames.shape
  beta = default_beta(model)
  base = config or config_for_effort('default')
  os.makedirs(output_dir, exist_ok=True)
  stem = os.path.splitext(os.path.basename(video_path))[0]
  rows = []
  for method in methods:
    config = dataclasses.replace(base, method=method, beta=beta)
    report = None
    if progress:
      progress(method, 0, {})  # starts the method's clock
      report = lambda done, m, _method=method: progress(_method, done, m)
    enc = encode_video_detailed(model, frames, 2.0, config, progress=report)
    decoded = decoding.decode(enc.data, model)
    if not np.array_equal(decoded, enc.reconstruction):
      raise AssertionError(f'{method}: decoder output differs from the encoder\'s')
    path = os.path.join(output_dir, f'{stem}.{method}.iac')
    atomic_io.write_bytes(path, enc.data)
    if method == methods[-1]:
      video.write_y4m(os.path.join(output_dir, f'{stem}.{method}.decoded.y4m'), decoded, 2.0)
    rows.append(DemoRow(method, t, metrics.bpp(len(enc.data), t * h * w),
                        psnr_of_frames(frames, decoded), enc.update_bits, enc.static_bits,
                        enc.total_seconds, path))
  return rows
