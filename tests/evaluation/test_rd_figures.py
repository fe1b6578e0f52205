import csv
import os
import subprocess
import sys

import numpy as np
import pytest

import iac_jax
from iac_jax import stream_info
from iac_jax.adaptation.finetuning import AdaptationConfig
from iac_jax.adaptation.video_codec import encode_video_detailed
from iac_jax.evaluation import rd_figures
from iac_jax.io import video
from tests.conftest import smooth_image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _rows():
  rows = []
  for model, beta, bpp in (('m1', 500, 0.1), ('m2', 100, 0.2), ('m3', 30, 0.4)):
    psnr = 30 + 4 * np.log2(bpp / 0.1)
    for method, scale, update in (('none', 1.0, 0), ('encoder', 0.95, 0), ('full', 0.9, 900)):
      rows.append({'video': 'v.y4m', 'iframes': '3', 'model': model, 'beta': str(beta),
                   'method': method, 'bpp': str(scale * bpp), 'psnr_db': str(psnr),
                   'update_bits': str(update), 'frame_bits': '8100'})
  rows.append({'video': 'v.y4m', 'iframes': '1', 'model': 'm2', 'beta': '100',
               'method': 'full', 'bpp': '0.5', 'psnr_db': '33', 'update_bits': '900',
               'frame_bits': '2700'})
  return rows


def test_bd_rows_compare_full_with_every_anchor_on_the_whole_clip():
  classical_rows = [{'video': 'v.y4m', 'iframes': '3', 'codec': 'x265', 'bpp': str(0.8 * b),
                     'psnr_db': str(30 + 4 * np.log2(b / 0.1))} for b in (0.1, 0.2, 0.4, 0.8)]
  curve_set = rd_figures.curves(_rows(), classical_rows)
  clips = rd_figures.full_clips(_rows())
  assert clips == [('v.y4m', 3)]
  bd = {b['anchor']: b for b in rd_figures.bd_rows({c: curve_set[c] for c in clips})}
  assert set(bd) == {'none', 'encoder', 'x265'}  # no x264 points
  assert bd['none']['bd_rate_pct'] == pytest.approx(-10.0)
  assert bd['encoder']['bd_rate_pct'] == pytest.approx(100 * (0.9 / 0.95 - 1))
  assert bd['x265']['bd_rate_pct'] == pytest.approx(12.5)  # full needs 0.9/0.8 the bits
  assert all(b['monotonic'] for b in bd.values())
  assert '| v.y4m | 3 | full | x265 | +12.5% |' in rd_figures.bd_markdown(list(bd.values()))


def test_ablation_table_and_update_share():
  table = rd_figures.ablation_markdown(_rows())
  assert '| v.y4m | m1 | 0.100 / 30.00 | 0.095 / 30.00 | 0.090 / 30.00 / 1k |' in table
  shares = rd_figures.update_share(_rows())
  by_frames = {(s['model'], s['iframes']): s['share'] for s in shares}
  assert by_frames[('m2', 1)] == pytest.approx(900 / 3600)
  assert by_frames[('m2', 3)] == pytest.approx(900 / 9000)


def test_update_bits_per_tensor_add_up_to_the_update_section(tiny_model):
  frames = np.stack([smooth_image(64, 64, seed=s) for s in range(2)])
  enc = encode_video_detailed(tiny_model, frames, 2.0,
                              AdaptationConfig(method='full', steps=3, crop_size=0,
                                               learning_rate=1e-2), seed=0)
  tensors = stream_info.update_bits_by_tensor(enc.data)
  total = sum(t['bits'] for t in tensors)
  header_bits = 8 * 28  # t, sigma_slab, alpha, radius
  assert abs(enc.update_bits - header_bits - total) <= 8 * 8  # the coder's few bytes
  assert sum(t['static_bits'] for t in tensors) == pytest.approx(enc.static_bits)
  assert [t['path'] for t in tensors] == sorted(t['path'] for t in tensors)
  assert any(t['nonzero'] for t in tensors)
  image = iac_jax.encode_image(tiny_model, frames[0])
  assert stream_info.update_bits_by_tensor(image) == []


def test_classical_sweep_and_plot_rd_apps_run_end_to_end(tmp_path):
  clip = tmp_path / 'clip.y4m'
  video.write_y4m(str(clip), np.stack([smooth_image(48, 64, seed=s) for s in range(6)]), 4.0)
  with open(tmp_path / 'rd.csv', 'w', newline='') as f:
    writer = csv.DictWriter(f, list(_rows()[0]))
    writer.writeheader()
    writer.writerows(r | {'video': 'clip.y4m'} for r in _rows())
  env = dict(os.environ, PYTHONPATH=ROOT, MPLBACKEND='Agg')
  run = lambda *args: subprocess.run([sys.executable, *args], check=False, capture_output=True,
                                     text=True, timeout=600, env=env)
  sweep_args = (os.path.join(ROOT, 'experiments', 'classical_sweep.py'), f'--videos={clip}',
                '--codecs=jpeg,x264', '--qps=27,37', f'--output_dir={tmp_path}')
  proc = run(*sweep_args, '--qualities=30')
  assert proc.returncode == 0, proc.stderr[-3000:]
  proc = run(*sweep_args, '--qualities=30,80')  # resumes: only q80 is new
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'jpeg q80' in proc.stderr and 'jpeg q30' not in proc.stderr
  with open(tmp_path / 'classical.csv') as f:
    classical_rows = list(csv.DictReader(f))
  assert sorted((r['codec'], r['setting'], r['iframes']) for r in classical_rows) == [
      ('jpeg', 'q30', '3'), ('jpeg', 'q80', '3'), ('x264', 'qp27', '3'), ('x264', 'qp37', '3')]
  proc = run(os.path.join(ROOT, 'experiments', 'plot_rd.py'), f'--results_dir={tmp_path}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  for name in ('rd_clip.png', 'update_share.png', 'tables.md'):
    assert (tmp_path / name).stat().st_size > 0, name
  assert (tmp_path / 'rd_clip.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  assert '| clip.y4m | 3 | full | x264 |' in (tmp_path / 'tables.md').read_text()
