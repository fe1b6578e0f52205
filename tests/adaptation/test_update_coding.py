import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iac_jax.adaptation import update_coding
from iac_jax.adaptation.model_prior import ModelPrior
from iac_jax.codec.bitstream import BitstreamError


@pytest.fixture()
def sent(tiny_model):
  return update_coding.decoder_side(tiny_model.params)


def _sparse_update(tree, seed=0, scale=0.01, density=0.1):
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda a: (rng.normal(size=np.shape(a)) * scale *
                                 (rng.random(np.shape(a)) < density)).astype(np.float32), tree)


def test_update_round_trip_is_bit_exact_including_escapes(sent):
  prior = ModelPrior()
  ints = update_coding.update_integers(_sparse_update(sent), prior.t)
  ints['g_s']['deconv3']['bias'][:3] = [10**6, -(10**5), prior.table_radius + 1]
  data = update_coding.encode_update(ints, prior)
  decoded, decoded_prior = update_coding.decode_update(data, sent)
  assert decoded_prior == prior
  jax.tree.map(np.testing.assert_array_equal, decoded, ints)  # structure and values


def test_rebuilt_parameters_agree_bit_for_bit(sent):
  prior = ModelPrior(t=0.003)
  ints = update_coding.update_integers(_sparse_update(sent, seed=1), prior.t)
  decoded, decoded_prior = update_coding.decode_update(
      update_coding.encode_update(ints, prior), sent)
  a = update_coding.apply_update(sent, ints, prior.t)
  b = update_coding.apply_update(sent, decoded, decoded_prior.t)
  def same_bits(x, y):
    assert x.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(x.view(np.uint32), y.view(np.uint32))

  jax.tree.map(same_bits, a, b)


def test_model_rate_of_zero_update_is_the_static_cost(tiny_model, sent):
  prior = ModelPrior()
  zero = jax.tree.map(jnp.zeros_like, sent)
  m = float(update_coding.model_rate_bits(zero, prior))
  # Both read the coder's table; the static cost is what the range coder really
  # writes for an all-zero update, within its few bytes of flush.
  static = update_coding.static_bits(tiny_model.params, prior)
  np.testing.assert_allclose(m, static, rtol=1e-4)
  ints = jax.tree.map(lambda a: np.zeros(np.shape(a), np.int64), sent)
  coded = 8 * (len(update_coding.encode_update(ints, prior)) - 28)  # 28: the prior
  assert static > 50 and abs(coded - static) <= 32, (coded, static)


def test_model_rate_matches_the_coded_size(sent):
  prior = ModelPrior()
  delta = _sparse_update(sent, seed=2)
  ints = update_coding.update_integers(delta, prior.t)
  estimated = float(update_coding.model_rate_bits(delta, prior))
  coded = 8 * (len(update_coding.encode_update(ints, prior)) - 28)
  assert abs(coded - estimated) <= 0.02 * estimated + 64


def test_model_rate_gradient_pulls_small_updates_to_zero(sent):
  prior = ModelPrior()
  # Every update below t/2 rounds to zero, yet the rate must push it back to zero.
  small = jax.tree.map(lambda a: jnp.full(jnp.shape(a), 0.3 * prior.t), sent)
  grads = jax.grad(lambda d: update_coding.model_rate_bits(d, prior, jax.random.PRNGKey(0)))(
      small)
  for g in jax.tree.leaves(grads):
    assert float(jnp.mean(g)) > 0  # descent lowers a positive update


def test_quantize_update_has_straight_through_gradient(sent):
  delta = _sparse_update(sent, seed=3)
  q = update_coding.quantize_update(delta, 0.005)
  jax.tree.map(lambda d, qd: np.testing.assert_allclose(qd, 0.005 * np.round(d / 0.005),
                                                        atol=1e-9), delta, q)
  g = jax.grad(lambda d: sum(jnp.sum(x) for x in jax.tree.leaves(
      update_coding.quantize_update(d, 0.005))))(delta)
  for x in jax.tree.leaves(g):
    np.testing.assert_array_equal(x, np.ones_like(x))


@pytest.mark.parametrize('payload, message', [
    (b'', 'too short'), (b'\x00' * 10, 'too short'),
    (b'\x7f\xf8' + b'\x00' * 26, 'non-finite prior'),  # t = NaN
    (b'\x3f\x70' + b'\x00' * 30, 'implausible prior')])  # sigma_slab = 0
def test_bad_update_sections_raise_bitstream_error(sent, payload, message):
  with pytest.raises(BitstreamError, match=message):
    update_coding.decode_update(payload, sent)
