import json

import numpy as np
import pytest

import iac_jax
from iac_jax.codec import models


def test_save_load_round_trip_keeps_parameters_and_fingerprint(tiny_model, tmp_path):
  path = str(tmp_path / 'm.msgpack')
  iac_jax.save_model(tiny_model, path)
  loaded = iac_jax.load_model(path)
  assert loaded.name == 'm' and loaded.config == tiny_model.config
  assert loaded.fingerprint == tiny_model.fingerprint
  import jax  # pylint: disable=g-import-not-at-top
  jax.tree.map(np.testing.assert_array_equal, loaded.params, tiny_model.params)


def test_fingerprint_changes_with_any_parameter(tiny_model):
  import jax  # pylint: disable=g-import-not-at-top
  params = jax.tree.map(np.array, tiny_model.params)
  params['g_s']['deconv3']['bias'][0] += 1e-7
  other = iac_jax.Model('x', tiny_model.config, params)
  assert other.fingerprint != tiny_model.fingerprint


def test_bad_model_files(tmp_path, tiny_model):
  with pytest.raises(ValueError, match='unknown model'):
    iac_jax.load_model('no-such-model')
  with pytest.raises(FileNotFoundError, match='model file not found: .*missing.msgpack'):
    iac_jax.load_model(str(tmp_path / 'missing.msgpack'))
  path = tmp_path / 'bad.msgpack'
  path.write_bytes(b'\x00garbage')
  (tmp_path / 'bad.json').write_text(json.dumps({'config': 'tiny'}))
  with pytest.raises(ValueError, match='cannot read'):
    iac_jax.load_model(str(path))
  good = str(tmp_path / 'good.msgpack')
  iac_jax.save_model(tiny_model, good)
  (tmp_path / 'good.json').write_text(json.dumps({'config': 'small'}))
  with pytest.raises(ValueError, match="does not match config 'small'"):
    iac_jax.load_model(good)


def test_shipped_models_are_described():
  described = models.describe_shipped()
  assert models.DEFAULT_MODEL in [d['name'] for d in described]
  for d in described:
    assert d['config'] in iac_jax.CONFIGS
    assert d['steps'] > 0 and d['beta'] > 0
    assert d['cpu_hours'] is not None and d['history']  # how it was made, run by run


def test_default_beta_is_the_models_own_else_100(tiny_model):
  assert 'beta' not in tiny_model.metadata
  assert models.default_beta(tiny_model) == models.DEFAULT_BETA == 100.0
  trained = iac_jax.Model('x', tiny_model.config, tiny_model.params, {'beta': 30})
  assert models.default_beta(trained) == 30.0
