"""Importing CompressAI MeanScaleHyperprior checkpoints: exactness against CompressAI's own
outputs (tests/fixtures, written by benchmarks/make_compressai_fixture.py in the CompressAI
venv; no torch here), the torch.save readers, and every kind of bad input."""

import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile

import jax
import numpy as np
import pytest

from iac_jax.adaptation import decoding
from iac_jax.codec import compressai_import, image_codec, models
from iac_jax.evaluation import compressai_parity
from iac_jax.io import torch_checkpoint
from iac_jax.io.torch_checkpoint import CheckpointError

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'fixtures')
NPZ = os.path.join(FIXTURES, 'compressai_tiny.npz')
PTH = os.path.join(FIXTURES, 'compressai_tiny.pth.tar')
LEGACY = os.path.join(FIXTURES, 'compressai_tiny_legacy.pth.tar')


@pytest.fixture(scope='module')
def reference():
  return torch_checkpoint.read_checkpoint(NPZ)


@pytest.fixture(scope='module')
def state_dict(reference):
  return compressai_import.select_state_dict(reference)


@pytest.fixture(scope='module')
def imported():
  return compressai_import.load_compressai(NPZ)


def _same_params(a, b):
  la, lb = jax.tree_util.tree_flatten_with_path(a)[0], jax.tree_util.tree_flatten_with_path(b)[0]
  assert [p for p, _ in la] == [p for p, _ in lb]
  return all(np.array_equal(x, y) for (_, x), (_, y) in zip(la, lb))


def test_fixture_is_small_and_nontrivial(reference):
  for path in (NPZ, PTH, LEGACY):
    assert os.path.getsize(path) < 500_000, path
  medians = reference['state_dict/entropy_bottleneck.quantiles'][:, 0, 1]
  assert np.max(np.abs(medians)) > 0.01  # the aux loss moved the quantiles
  assert np.std(reference['state_dict/g_a.1.gamma']) > 1e-3  # GDN trained


def test_forward_rates_and_bitstream_match_compressai(imported, reference):
  r = compressai_parity.compare(imported, reference)
  assert r['y_max_abs_err'] <= 1e-5 * max(1.0, r['y_max_abs'])
  assert r['z_max_abs_err'] <= 1e-5 * max(1.0, r['z_max_abs'])
  assert r['x_hat_max_abs_err'] <= 1e-5
  assert abs(r['y_bits_rel']) < 1e-3 and abs(r['z_bits_rel']) < 1e-3
  # Our coder's table-scale estimate is what it codes: near the continuous one.
  assert abs(r['y_bits_table_scales'] / r['y_bits'] - 1) < 0.01
  assert abs(r['payload_bytes_rel']) < 0.03, r
  assert abs(r['psnr_db_diff']) < 0.1, r
  assert r['decoded_is_reconstruction']


def test_torch_save_files_read_like_the_npz(imported):
  for path in (PTH, LEGACY):  # zip format, and the legacy format nested under 'state_dict'
    config, params = compressai_import.convert_state_dict(torch_checkpoint.read_checkpoint(path))
    assert config == imported.config
    assert _same_params(params, imported.params), path


def _renamed(state_dict, template):
  out = {}
  for k, v in state_dict.items():
    for new, name in (('matrices', 'matrix'), ('biases', 'bias'), ('factors', 'factor')):
      prefix = f'entropy_bottleneck.{new}.'
      if k.startswith(prefix):
        k = 'entropy_bottleneck.' + template.format(new=new, name=name, i=k[len(prefix):])
    out[k] = v
  return out


def test_key_name_variants_are_accepted(imported, state_dict):
  old = _renamed(state_dict, '_{name}{i}')  # CompressAI 1.1's names
  zoo = _renamed(state_dict, '_{new}.{i}')  # the zoo's (nn.ParameterList of 1.0)
  assert 'entropy_bottleneck._matrix0' in old and 'entropy_bottleneck._matrices.0' in zoo
  for variant in (old, zoo, {'epoch': 3, 'state_dict': old},
                  {f'module.{k}': v for k, v in state_dict.items()}):
    _, params = compressai_import.convert_state_dict(variant)
    assert _same_params(params, imported.params)


def test_import_command_writes_a_model_that_codes(tmp_path, imported):
  out = tmp_path / 'mbt-tiny.msgpack'
  proc = subprocess.run([sys.executable, '-m', 'iac_jax.cli', 'import-compressai',
                         f'--checkpoint={PTH}', f'--output={out}'], capture_output=True,
                        text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr
  report = json.loads(proc.stdout)
  assert (report['config'], report['N'], report['M']) == ('tiny', 8, 12)
  meta = json.loads((tmp_path / 'mbt-tiny.json').read_text())
  assert meta['source'] == 'compressai_tiny.pth.tar' and meta['config'] == 'tiny'
  assert meta['imported_from'].startswith('CompressAI') and len(meta['source_sha256']) == 64
  model = models.load_model(str(out))
  assert model.fingerprint == imported.fingerprint  # the saved weights are the imported ones
  from tests.conftest import smooth_image  # pylint: disable=g-import-not-at-top
  image = smooth_image(70, 90)
  data = image_codec.encode_image(model, image)
  _, reconstruction = image_codec.encode_frame(model, image)
  np.testing.assert_array_equal(decoding.decode(data, model)[0], reconstruction)


def test_zoo_file_names_give_quality_and_beta(tmp_path):
  path = tmp_path / 'mbt2018-mean-3-e522738d.pth.tar'
  shutil.copy(PTH, path)
  model = compressai_import.load_compressai(str(path))
  assert model.metadata['quality'] == 3 and model.metadata['beta'] == pytest.approx(1 / 0.0067)
  assert model.name == 'mbt2018-mean-3-e522738d'


class _Evil:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f'touch {self.marker}',))


def _write_npz(path, sd):
  np.savez(path, **sd)


def _without(sd, key):
  return {k: v for k, v in sd.items() if k != key}


def _bad_inputs(tmp_path, sd):
  """(file, expected message fragment) for each kind of bad input."""
  marker = tmp_path / 'pwned'
  evil = pickle.dumps(_Evil(str(marker)), protocol=2)
  cases = {}
  (tmp_path / 'text.pth').write_text('hello, not a checkpoint\n')
  cases['text.pth'] = 'not a PyTorch checkpoint'
  (tmp_path / 'evil.pth').write_bytes(evil)
  cases['evil.pth'] = 'asks for posix.system'
  with zipfile.ZipFile(tmp_path / 'evil_zip.pth', 'w') as z:
    z.writestr('archive/data.pkl', evil)
  cases['evil_zip.pth'] = 'asks for posix.system'
  with zipfile.ZipFile(tmp_path / 'short.pth', 'w') as z, zipfile.ZipFile(PTH) as src:
    for info in src.infolist():  # one storage cut short: its size no longer matches
      data = src.read(info)
      z.writestr(info.filename, data[:8] if info.filename.endswith('/data/0') else data)
  cases['short.pth'] = 'bytes, its tensors declare'
  _write_npz(tmp_path / 'missing.npz', _without(sd, 'h_s.2.bias'))
  cases['missing.npz'] = 'tensor h_s.2.bias is missing'
  _write_npz(tmp_path / 'misshapen.npz', dict(sd, **{'g_s.3.gamma': np.ones((8, 7), 'f4')}))
  cases['misshapen.npz'] = 'g_s.3.gamma has shape (8, 7), expected (8, 8)'
  hyper = dict(sd, **{'h_s.0.weight': np.ones((8, 8, 5, 5), 'f4')})
  _write_npz(tmp_path / 'bmshj2018.npz', hyper)
  cases['bmshj2018.npz'] = 'ScaleHyperprior (bmshj2018-hyperprior)'
  cheng = dict(_without(sd, 'g_a.0.weight'), **{'g_a.0.conv1.weight': np.ones((8, 3, 3, 3), 'f4')})
  _write_npz(tmp_path / 'cheng2020.npz', cheng)
  cases['cheng2020.npz'] = 'cheng2020'
  _write_npz(tmp_path / 'mbt2018.npz', dict(sd, **{'context_prediction.weight': np.ones(3, 'f4')}))
  cases['mbt2018.npz'] = 'context model'
  _write_npz(tmp_path / 'nan.npz', dict(sd, **{'g_a.0.bias': np.full(8, np.nan, 'f4')}))
  cases['nan.npz'] = 'g_a.0.bias is not finite'
  _write_npz(tmp_path / 'bound.npz', dict(sd, **{
      'gaussian_conditional.lower_bound_scale.bound': np.array([0.2], 'f4')}))
  cases['bound.npz'] = 'lower_bound_scale.bound'
  return marker, cases


def test_bad_inputs_are_refused_and_nothing_is_written(tmp_path, state_dict):
  marker, cases = _bad_inputs(tmp_path, state_dict)
  for name, message in cases.items():
    out = tmp_path / f'out-{name}.msgpack'
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')):
      compressai_import.import_checkpoint(str(tmp_path / name), str(out))
    assert not out.exists() and not (tmp_path / f'out-{name}.json').exists(), name
  assert not marker.exists()  # the crafted pickle ran nothing


def test_unregistered_sizes_name_the_registered_configs():
  rng = np.random.default_rng(0)
  sd = {k: rng.normal(size=s).astype(np.float32)
        for k, s in compressai_import.compressai_shapes(16, 24).items()}
  with pytest.raises(CheckpointError, match=r"N=16, M=24 matches no registered config.*"
                     r"tiny \(N=8, M=12\)"):
    compressai_import.convert_state_dict(sd)


def test_cli_error_is_one_line(tmp_path):
  (tmp_path / 'evil.pth').write_bytes(pickle.dumps(_Evil(str(tmp_path / 'pwned')), protocol=2))
  proc = subprocess.run([sys.executable, '-m', 'iac_jax.cli', 'import-compressai',
                         f'--checkpoint={tmp_path / "evil.pth"}',
                         f'--output={tmp_path / "m.msgpack"}'],
                        capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 1
  assert proc.stderr.strip().count('\n') == 0 and 'only tensors' in proc.stderr
  assert not (tmp_path / 'm.msgpack').exists() and not (tmp_path / 'pwned').exists()
