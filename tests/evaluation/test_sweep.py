import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from iac_jax.evaluation import sweep
from iac_jax.io import video
from tests.conftest import smooth_image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_run_point_measures_the_real_bitstream(tiny_model):
  frames = np.stack([smooth_image(64, 64, seed=s) for s in range(2)])
  none = sweep.run_point(tiny_model, 'clip', frames, 'none', steps=2, crop_size=0)
  full = sweep.run_point(tiny_model, 'clip', frames, 'full', steps=2, crop_size=0)
  assert none['update_bits'] == 0 and none['steps'] == 0
  assert full['update_bits'] > 0 and full['static_bits'] > 0
  for row in (none, full):
    # Total rate = frames + update + the container's few bytes of headers.
    payload = row['frame_bits'] + row['update_bits']
    assert payload <= row['bpp'] * 2 * 64 * 64 < payload + 8 * 200


def test_bd_table_compares_methods_over_the_shared_rate_points():
  rows = []
  for model, bpp in (('m1', 0.1), ('m2', 0.2), ('m3', 0.4), ('m4', 0.8)):
    psnr = 30 + 4 * np.log2(bpp / 0.1)
    rows.append({'video': 'v', 'iframes': 3, 'model': model, 'method': 'none',
                 'bpp': bpp, 'psnr_db': psnr})
    rows.append({'video': 'v', 'iframes': 3, 'model': model, 'method': 'full',
                 'bpp': 0.9 * bpp, 'psnr_db': psnr})
  (row,) = sweep.bd_table(rows, anchors=('none', 'encoder'))  # no encoder points
  assert row['anchor'] == 'none' and row['points'] == 4
  assert row['bd_rate_pct'] == pytest.approx(-10.0)
  assert row['bd_psnr_db'] > 0 and row['monotonic']


def test_rd_sweep_app_writes_points_and_skips_them_on_rerun(tiny_model_file, tmp_path):
  clip = tmp_path / 'clip.y4m'
  video.write_y4m(str(clip), np.stack([smooth_image(64, 64, seed=s) for s in range(4)]), 4.0)
  out = tmp_path / 'out'
  cmd = [sys.executable, os.path.join(ROOT, 'experiments', 'rd_sweep.py'),
         f'--videos={clip}', f'--models={tiny_model_file}', '--methods=none,full',
         '--steps=2', '--crop_size=0', '--iframes=1,0', f'--output_dir={out}']
  env = dict(os.environ, PYTHONPATH=ROOT)
  proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out / 'rd.csv') as f:
    rows = list(csv.DictReader(f))
  assert sorted((r['iframes'], r['method']) for r in rows) == [
      ('1', 'full'), ('1', 'none'), ('2', 'full'), ('2', 'none')]
  proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600, env=env)
  assert proc.returncode == 0 and proc.stderr.count('skip') == 4
  assert 'full' in (out / 'summary.md').read_text()
