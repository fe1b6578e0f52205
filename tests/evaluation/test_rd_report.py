import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from iac_jax.codec import image_codec
from iac_jax.evaluation import classical, rd_report
from iac_jax.io import video
from tests.conftest import smooth_image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_classical_codecs_rate_grows_with_quality():
  image = smooth_image(64, 96)
  low, high = (classical.rd_point(image, 'webp', q) for q in (10, 90))
  assert low['bpp'] < high['bpp'] and low['psnr_db'] < high['psnr_db']
  data, decoded = classical.compress(image, 'jpeg', 75)
  assert data[:2] == b'\xff\xd8' and decoded.shape == image.shape
  with pytest.raises(ValueError, match='unknown format'):
    classical.compress(image, 'gif', 50)


def test_psnr_at_rate_interpolates_linearly_and_refuses_to_extrapolate():
  assert classical.psnr_at_rate([1.0, 0.5], [40.0, 30.0], 0.75) == pytest.approx(35.0)
  assert np.isnan(classical.psnr_at_rate([0.5, 1.0], [30.0, 40.0], 1.5))


def test_a_point_below_a_formats_range_is_set_against_its_smallest_file():
  rows = [{'source': 'photo', 'frame': 0, 'codec': codec_name, 'setting': setting,
           'bpp': bpp, 'psnr_db': psnr, 'pixels': 100}
          for codec_name, setting, bpp, psnr in [
              ('iac-jax', 'low', 0.1, 30.0), ('iac-jax', 'high', 0.6, 35.0),
              ('jpeg', 'q0', 0.3, 24.0), ('jpeg', 'q1', 0.3, 24.0), ('jpeg', 'q50', 1.0, 38.0),
              ('webp', 'q0', 0.05, 28.0), ('webp', 'q50', 0.5, 36.0)]]
  low, high = sorted((s for s in rd_report.summarize(rows) if s['codec'] == 'iac-jax'),
                     key=lambda s: s['bpp'])
  assert np.isnan(low['jpeg_psnr_at_rate'])
  assert (low['jpeg_smallest_bpp'], low['jpeg_smallest_psnr_db']) == (0.3, 24.0)
  assert low['webp_psnr_at_rate'] == pytest.approx(28.0 + 8.0 * 0.05 / 0.45)
  assert 'webp_smallest_bpp' not in low
  assert high['jpeg_psnr_at_rate'] == pytest.approx(24.0 + 14.0 * 3 / 7)
  assert np.isnan(high['webp_psnr_at_rate']) and 'webp_smallest_bpp' not in high  # above
  table = rd_report.markdown_table(rd_report.summarize(rows)).splitlines()
  assert table[2].endswith('| none; its smallest: 0.3000 bpp, 24.00 | 28.89 |')
  assert table[3].endswith('| 30.00 | outside |')


def test_report_rates_come_from_real_bitstreams(tiny_model, tmp_path):
  frames = np.stack([smooth_image(40, 72, seed=s) for s in range(2)])
  source = rd_report.Source('clip', frames)
  rows = rd_report.measure([tiny_model], [source], qualities=[30, 80])
  learned = [r for r in rows if r['codec'] == 'iac-jax']
  assert len(learned) == 2 and len(rows) == 2 * (1 + 2 * 2)
  stream = image_codec.encode_image(tiny_model, frames[1])
  assert learned[1]['bpp'] == pytest.approx(8 * len(stream) / (40 * 72))
  summary = rd_report.write(rows, str(tmp_path))
  point = next(s for s in summary if s['codec'] == 'iac-jax')
  assert point['frames'] == 2
  assert point['bpp'] == pytest.approx(np.mean([r['bpp'] for r in learned]))  # equal sizes
  for name in ('rd.csv', 'summary.csv', 'summary.md', 'rd.png'):
    assert os.path.getsize(tmp_path / name) > 0
  assert tiny_model.name in (tmp_path / 'summary.md').read_text()


def test_rd_report_app_runs_end_to_end(tiny_model_file, tmp_path):
  clip = tmp_path / 'clip.y4m'
  video.write_y4m(str(clip), np.stack([smooth_image(48, 64, seed=s) for s in range(4)]), 4.0)
  photo = tmp_path / 'photo.png'
  Image.fromarray(smooth_image(40, 40)).save(photo)
  out = tmp_path / 'out'
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'experiments', 'rd_report.py'),
       f'--models={tiny_model_file}', f'--videos={clip}', f'--images={photo}',
       '--qualities=20,90', f'--output_dir={out}'],
      check=False, capture_output=True, text=True, timeout=600,
      env=dict(os.environ, PYTHONPATH=ROOT))
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out / 'rd.csv') as f:
    rows = list(csv.DictReader(f))
  # 2 I-frames of the 4 fps clip at 2 fps, plus the photo; 1 model + 2 codecs x 2 qualities.
  assert len(rows) == 3 * 5
  assert {r['source'] for r in rows} == {'clip.y4m', 'photo.png'}


@pytest.mark.parametrize('codec_name', classical.VIDEO_CODECS)
def test_intra_video_codecs_decode_every_frame_and_rate_falls_with_qp(codec_name):
  frames = np.stack([smooth_image(33, 49, seed=s) for s in range(3)])  # odd: padded
  fine = classical.frames_rd_point(frames, codec_name, 22)
  coarse = classical.frames_rd_point(frames, codec_name, 42)
  assert coarse['bpp'] < fine['bpp'] and coarse['psnr_db'] < fine['psnr_db']
  assert fine['psnr_db'] > 30 and np.isnan(fine['ms_ssim'])  # too small for MS-SSIM
  data, decoded = classical.compress_intra(frames, codec_name, 30)
  assert decoded.shape == frames.shape and data[:3] in (b'\x00\x00\x00', b'\x00\x00\x01')
  assert b'x264 - core' not in data and b'x265 (build' not in data  # settings SEI dropped
  with pytest.raises(ValueError, match='QP must be'):
    classical.compress_intra(frames, codec_name, 60)
  # Intra only: a repeated frame costs as much as the first (inter coding would make the
  # repeats nearly free).
  one, _ = classical.compress_intra(frames[:1], codec_name, 30)
  four, _ = classical.compress_intra(np.repeat(frames[:1], 4, axis=0), codec_name, 30)
  assert len(four) > 3.5 * len(one) - 400  # parameter sets are sent once


def test_frames_rd_point_counts_every_frame_file_for_image_codecs():
  frames = np.stack([smooth_image(40, 48, seed=s) for s in range(2)])
  row = classical.frames_rd_point(frames, 'jpeg', 50)
  sizes = [len(classical.compress(f, 'jpeg', 50)[0]) for f in frames]
  assert row['bpp'] == pytest.approx(8 * sum(sizes) / (2 * 40 * 48))
  assert row['setting'] == 'q50'
