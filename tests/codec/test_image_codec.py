import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import iac_jax
from iac_jax.codec import bitstream, image_codec
from iac_jax.codec.hyperprior import MeanScaleHyperprior
from tests.conftest import smooth_image


@pytest.mark.parametrize('shape', [(1, 1, 3), (7, 5, 3), (64, 64, 3), (130, 67, 3),
                                   (67, 130, 3), (65, 129, 3)])
def test_decode_equals_the_encoders_reconstruction(tiny_model, shape):
  image = smooth_image(shape[0], shape[1], seed=shape[0])
  data = iac_jax.encode_image(tiny_model, image)
  _, reconstruction = image_codec.encode_frame(tiny_model, image)
  decoded = iac_jax.decode(data, tiny_model)
  assert decoded.shape == (1,) + shape and decoded.dtype == np.uint8
  np.testing.assert_array_equal(decoded[0], reconstruction)


@pytest.mark.parametrize('channels', [None, 1, 4])
def test_grayscale_and_rgba_inputs(tiny_model, channels, caplog):
  rgb = smooth_image(40, 50)
  image = {None: rgb[..., 0], 1: rgb[..., :1], 4: np.dstack([rgb, rgb[..., :1]])}[channels]
  data = iac_jax.encode_image(tiny_model, image)
  assert 'grayscale' in caplog.text or 'alpha' in caplog.text
  expected_rgb = rgb if channels == 4 else np.repeat(rgb[..., :1], 3, axis=2)
  _, reconstruction = image_codec.encode_frame(tiny_model, expected_rgb)
  np.testing.assert_array_equal(iac_jax.decode(data, tiny_model)[0], reconstruction)


def test_bad_images_are_rejected(tiny_model):
  with pytest.raises(TypeError, match='uint8'):
    iac_jax.encode_image(tiny_model, np.zeros((8, 8, 3), np.float32))
  with pytest.raises(ValueError, match='channels'):
    iac_jax.encode_image(tiny_model, np.zeros((8, 8, 2), np.uint8))
  with pytest.raises(ValueError, match='shape'):
    iac_jax.encode_image(tiny_model, np.zeros((0, 8, 3), np.uint8))


def test_coded_size_is_close_to_the_estimated_rate(shipped_model, sample_image):
  model = shipped_model
  image = sample_image
  data = iac_jax.encode_image(model, image)
  x = jnp.asarray(image_codec.pad_to_multiple(image)[None], jnp.float32) / 255.0
  out = MeanScaleHyperprior(model.config).apply({'params': model.params}, x,
                                                training=False)
  estimated_bits = float(out['y_bits'][0] + out['z_bits'][0])
  _header, sections = bitstream.unpack(data)
  payload_bits = 8 * sum(len(s.payload) for s in sections)
  assert estimated_bits > 8000  # large enough for a 2% comparison to mean something
  # 2% plus a few bytes per range-coded stream for the coder's flush.
  print(f'estimated {estimated_bits:.0f} bits, coded {payload_bits} bits')
  assert abs(payload_bits - estimated_bits) <= 0.02 * estimated_bits + 8 * 8
  # The container adds a small constant header (model name, sizes, CRCs).
  assert len(data) - payload_bits // 8 < 100


def test_encoding_is_deterministic(tiny_model):
  image = smooth_image(70, 90, seed=5)
  assert iac_jax.encode_image(tiny_model, image) == iac_jax.encode_image(tiny_model, image)


def test_fresh_process_with_other_thread_count_decodes_identical_pixels(
    tiny_model, tiny_model_file, tmp_path):
  image = smooth_image(100, 140, seed=9)
  model = iac_jax.load_model(tiny_model_file)
  data = iac_jax.encode_image(model, image)
  (tmp_path / 'x.iac').write_bytes(data)
  here = iac_jax.decode(data, model)
  script = (
      'import sys, numpy as np, iac_jax;'
      f'm = iac_jax.load_model({tiny_model_file!r});'
      f'd = iac_jax.decode(open({str(tmp_path / "x.iac")!r}, "rb").read(), m);'
      f'np.save({str(tmp_path / "out.npy")!r}, d)')
  env = dict(os.environ, XLA_FLAGS='--xla_cpu_multi_thread_eigen=false',
             OMP_NUM_THREADS='1')
  subprocess.run([sys.executable, '-c', script], check=True, env=env, timeout=300)
  np.testing.assert_array_equal(np.load(tmp_path / 'out.npy'), here)


def test_decode_refuses_other_weights_and_unknown_models(tiny_model):
  data = iac_jax.encode_image(tiny_model, smooth_image(16, 16))
  other = iac_jax.init_model('tiny', seed=1)
  with pytest.raises(iac_jax.BitstreamError, match='different weights'):
    iac_jax.decode(data, other)
  with pytest.raises(iac_jax.BitstreamError, match='not installed'):
    iac_jax.decode(data)  # names 'tiny-init0', which does not ship
  small = iac_jax.init_model('small', seed=0)
  with pytest.raises(iac_jax.BitstreamError, match='config'):
    iac_jax.decode(data, small)
