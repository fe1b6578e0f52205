"""adapt_many on 4 simulated CPU devices (a subprocess: the device count is fixed when
JAX starts) against adapting each clip alone."""

import json
import os
import subprocess
import sys

import numpy as np

from iac_jax.io import video
from tests.conftest import smooth_image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_SCRIPT = r'''
import json, sys
import jax, numpy as np
from iac_jax import init_model, save_model
from iac_jax.adaptation import decoding
from iac_jax.codec import image_codec
from iac_jax.evaluation import metrics
from iac_jax.adaptation.finetuning import AdaptationConfig
from iac_jax.adaptation.batched import video_mesh
from iac_jax.demo import psnr_of_frames
from iac_jax.adaptation.video_codec import encode_video_detailed, encode_videos
from tests.conftest import smooth_image

assert jax.device_count() == 4, jax.devices()
model = init_model('tiny', seed=0)
clip = lambda seed, h, w: np.stack([smooth_image(h, w, seed=seed + k) for k in range(2)])
# Four clips of one shape fill the 4 devices; a fifth of another shape forms a bucket
# of its own, topped up with copies of itself.
videos = [clip(10 * i, 64, 64) for i in range(4)] + [clip(99, 64, 128)]
seeds = [0, 1, 2, 3, 4]
config = AdaptationConfig(method='full', steps=3, learning_rate=1e-3, crop_size=0)
many = encode_videos(model, videos, [2.0] * 5, config, seeds, mesh=video_mesh())
out = []
for v, s, enc in zip(videos, seeds, many):
  alone = encode_video_detailed(model, v, 2.0, config, seed=s)
  decoded = decoding.decode(enc.data, model)
  pixels = v.shape[0] * v.shape[1] * v.shape[2]
  out.append({'decodes': bool(np.array_equal(decoded, enc.reconstruction)),
              'bpp_many': metrics.bpp(len(enc.data), pixels),
              'bpp_alone': metrics.bpp(len(alone.data), pixels),
              'psnr_many': psnr_of_frames(v, decoded),
              'psnr_alone': psnr_of_frames(v, alone.reconstruction),
              'update_bits': enc.update_bits})
print(json.dumps(out))
'''


def test_adapt_many_on_four_devices_matches_adapting_each_clip_alone():
  env = dict(os.environ, PYTHONPATH=ROOT,
             XLA_FLAGS='--xla_force_host_platform_device_count=4')
  proc = subprocess.run([sys.executable, '-c', _SCRIPT], check=False, capture_output=True,
                        text=True, timeout=900, env=env, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads(proc.stdout.strip().splitlines()[-1])
  assert len(results) == 5
  for r in results:
    assert r['decodes'] and r['update_bits'] > 0
    assert abs(r['bpp_many'] - r['bpp_alone']) <= 0.005 * r['bpp_alone']
    assert abs(r['psnr_many'] - r['psnr_alone']) <= 0.01


def test_adapt_videos_app_codes_each_video_and_skips_finished_ones(tiny_model_file, tmp_path):
  clips = tmp_path / 'clips'
  clips.mkdir()
  for i in range(2):
    frames = np.stack([smooth_image(64, 64, seed=10 * i + k) for k in range(4)])
    video.write_y4m(str(clips / f'c{i}.y4m'), frames, 4.0)
  out = tmp_path / 'out'
  cmd = [sys.executable, os.path.join(ROOT, 'experiments', 'adapt_videos.py'),
         f'--videos={clips}/*.y4m', f'--model={tiny_model_file}', '--steps=2',
         '--crop_size=0', f'--output_dir={out}']
  env = dict(os.environ, PYTHONPATH=ROOT)
  proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert sorted(os.listdir(out)) == ['c0.iac', 'c1.iac', 'summary.csv']
  summary = (out / 'summary.csv').read_text().splitlines()
  assert summary[0].startswith('video,frames') and len(summary) == 3
  before = os.path.getmtime(out / 'c0.iac')
  proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600, env=env)
  assert proc.returncode == 0 and '2 already done' in proc.stderr
  assert os.path.getmtime(out / 'c0.iac') == before
  assert len((out / 'summary.csv').read_text().splitlines()) == 3
