"""The command line, run as a user would (a subprocess per command)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from iac_jax.io import image_io
from tests.conftest import smooth_image


def _cli(*args, check=True):
  proc = subprocess.run([sys.executable, '-m', 'iac_jax.cli', *args], capture_output=True,
                        text=True, timeout=300, check=False)
  if check and proc.returncode != 0:
    raise AssertionError(proc.stderr)
  return proc


def test_encode_info_decode(tmp_path, tiny_model_file):
  src = tmp_path / 'in.png'
  image_io.write_png(str(src), smooth_image(50, 70))
  out = tmp_path / 'x.iac'
  report = json.loads(_cli('encode', f'--input={src}', f'--output={out}',
                           f'--model={tiny_model_file}').stdout)
  assert report['bytes'] == os.path.getsize(out)
  info = json.loads(_cli('info', f'--input={out}').stdout)
  assert info['frames'] == 1 and (info['height'], info['width']) == (50, 70)
  assert info['model'] == 'tiny-test' and info['total_bytes'] == report['bytes']
  assert [s['tag'] for s in info['sections']] == ['Z', 'Y']
  png = tmp_path / 'y.png'
  proc = _cli('decode', f'--input={out}', f'--output={png}', f'--model={tiny_model_file}',
              f'--max_output_pixels={50 * 70 - 1}', check=False)
  assert proc.returncode == 1 and not png.exists()
  assert '3500 pixels, more than this decoder allocates (3499)' in proc.stderr
  _cli('decode', f'--input={out}', f'--output={png}', f'--model={tiny_model_file}')
  assert image_io.read_image(str(png)).shape == (50, 70, 3)


def test_errors_are_one_line_with_nonzero_exit(tmp_path, tiny_model_file):
  proc = _cli('decode', f'--input={tmp_path / "missing.iac"}', f'--output={tmp_path}/o.png',
              check=False)
  assert proc.returncode == 1 and 'not found' in proc.stderr
  bad = tmp_path / 'bad.iac'
  bad.write_bytes(b'IACJ\x01garbage')
  proc = _cli('decode', f'--input={bad}', f'--output={tmp_path}/o.png',
              f'--model={tiny_model_file}', check=False)
  assert proc.returncode == 1 and 'invalid bitstream' in proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1
  assert not (tmp_path / 'o.png').exists()
  proc = _cli('encode', f'--input={bad}', f'--output={tmp_path}/o.iac', check=False)
  assert proc.returncode == 1 and 'cannot read image' in proc.stderr


def test_only_bad_input_becomes_a_one_line_error_and_bugs_keep_their_traceback(
    monkeypatch, capsys):
  from iac_jax import cli  # pylint: disable=g-import-not-at-top

  def bad_input():
    with cli._bad_input():  # pylint: disable=protected-access
      raise ValueError('cannot read image x.png: not an image')

  monkeypatch.setattr(cli, '_encode', bad_input)
  with pytest.raises(SystemExit, match='1'):
    cli.main(['iac-jax', 'encode'])
  assert capsys.readouterr().err == 'iac-jax: error: cannot read image x.png: not an image\n'
  for bug in (TypeError('unsupported operand'), ValueError('operands could not be '
                                                           'broadcast together')):
    def buggy(bug=bug):
      raise bug
    monkeypatch.setattr(cli, '_encode', buggy)
    with pytest.raises(type(bug), match=str(bug)):
      cli.main(['iac-jax', 'encode'])


def test_models_lists_the_shipped_models():
  listed = json.loads(_cli('models').stdout)
  assert listed and {'name', 'config', 'beta', 'steps', 'train_hours', 'data'} <= set(listed[0])


def test_video_encode_info_decode(tmp_path, tiny_model_file):
  from iac_jax.io import video  # pylint: disable=g-import-not-at-top
  frames = np.stack([smooth_image(40, 70, seed=s) for s in range(5)])
  src = tmp_path / 'clip.y4m'
  video.write_y4m(str(src), frames, 4.0)  # 4 fps: I-frames 0, 2, 4 at 2 fps
  out = tmp_path / 'clip.iac'
  proc = _cli('encode', f'--input={src}', f'--output={out}', f'--model={tiny_model_file}',
              '--method=full', '--steps=4', '--crop_size=0', '--learning_rate=1e-3')
  report = json.loads(proc.stdout)
  assert report['frames'] == 3 and report['update_bits'] > 0
  assert 'step 4/4' in proc.stderr and 'ETA' in proc.stderr
  info = json.loads(_cli('info', f'--input={out}').stdout)
  assert info['kind'] == 'video' and info['frames'] == 3
  assert info['update_bits'] == report['update_bits'] and len(info['frame_bits']) == 3
  assert 0 < info['update_static_bits'] < info['update_bits']
  _cli('decode', f'--input={out}', f'--output={tmp_path / "dec.y4m"}',
       f'--model={tiny_model_file}')
  decoded, _ = video.read_video(str(tmp_path / 'dec.y4m'), iframe_fps=None)
  assert decoded.shape == (3, 40, 70, 3)
  _cli('decode', f'--input={out}', f'--output={tmp_path / "pngs"}', f'--model={tiny_model_file}')
  assert sorted(p.name for p in (tmp_path / 'pngs').iterdir()) == [
      'frame_00000.png', 'frame_00001.png', 'frame_00002.png']


def test_video_adaptation_stops_early_on_a_plateau(tmp_path, tiny_model_file):
  from iac_jax.io import video  # pylint: disable=g-import-not-at-top
  src = tmp_path / 'clip.y4m'
  video.write_y4m(str(src), np.stack([smooth_image(40, 70, seed=s) for s in range(2)]), 2.0)
  # A learning rate too small to move the loss: flat from the start.
  proc = _cli('encode', f'--input={src}', f'--output={tmp_path / "c.iac"}',
              f'--model={tiny_model_file}', '--steps=40', '--crop_size=0',
              '--learning_rate=1e-9', '--plateau_window=4')
  assert json.loads(proc.stdout)['adapt_steps'] == 12  # 3 windows: the first, 2 without gain
  assert 'step 12/40' in proc.stderr
