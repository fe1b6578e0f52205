import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iac_jax.codec.entropy_models import factorized_tables, gaussian
from iac_jax.codec.entropy_models.factorized import FactorizedDensity, cdf_logits
from iac_jax.codec.entropy_models.tables import pmf_to_quantized_cdf, tables_from_pmfs
from iac_jax.codec.hyperprior import MeanScaleHyperprior
from tests.conftest import smooth_image


def test_quantized_cdf_is_valid_and_deterministic():
  pmf = np.array([0.5, 0.25, 1e-12, 0.2, 0.05 - 1e-12])
  cdf = pmf_to_quantized_cdf(pmf, 16)
  assert cdf[0] == 0 and cdf[-1] == 1 << 16
  assert np.all(np.diff(cdf) >= 1)  # every symbol, even a tiny one, stays codable
  np.testing.assert_array_equal(cdf, pmf_to_quantized_cdf(pmf.copy(), 16))
  with pytest.raises(ValueError, match='pmf must be a finite, non-empty vector'):
    pmf_to_quantized_cdf(np.array([np.nan, 1.0]), 16)


def test_tables_layout():
  t = tables_from_pmfs([np.array([0.5, 0.5]), np.array([1.0])], [-1, 3], precision=12)
  # [-precision, cdf of 2 symbols + escape] + [-precision, cdf of 1 symbol + escape]
  assert t.lookup.size == (1 + 4) + (1 + 3)
  assert t.lookup[0] == -12 and t.lookup[5] == -12
  np.testing.assert_array_equal(t.offsets, [-1, 3])
  np.testing.assert_array_equal(t.sizes, [2, 1])


def test_factorized_density_is_a_distribution():
  density = FactorizedDensity(channels=3)
  params = density.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))['params']
  k = jnp.arange(-200, 201, dtype=jnp.float32)[:, None] * jnp.ones((1, 3))
  lik = density.apply({'params': params}, k)
  np.testing.assert_allclose(jnp.sum(lik, axis=0), np.ones(3), atol=1e-4)


def test_factorized_tables_are_deterministic_and_match_the_density():
  density = FactorizedDensity(channels=4)
  params = density.init(jax.random.PRNGKey(3), jnp.zeros((1, 4)))['params']
  a = factorized_tables(params)
  b = factorized_tables(jax.tree.map(np.array, params))
  np.testing.assert_array_equal(a.lookup, b.lookup)
  # The float64 NumPy CDF is the same function as the float32 JAX one.
  x = np.linspace(-20, 20, 41)
  np64 = cdf_logits({k: np.asarray(v, np.float64) for k, v in params.items()},
                    np.broadcast_to(x, (4, 41)), np)
  j32 = cdf_logits(params, jnp.broadcast_to(jnp.asarray(x, jnp.float32), (4, 41)))
  np.testing.assert_allclose(np64, j32, rtol=1e-4, atol=1e-4)


def test_gaussian_scale_indexes_pick_the_nearest_table_scale():
  table = gaussian.scale_table()
  idx = gaussian.scale_indexes(table.astype(np.float32))
  np.testing.assert_array_equal(idx, np.arange(gaussian.NUM_SCALES))
  assert gaussian.scale_indexes(np.float32(1e-5)) == 0
  assert gaussian.scale_indexes(np.float32(1e6)) == gaussian.NUM_SCALES - 1
  np.testing.assert_array_equal(
      np.asarray(gaussian.scale_indexes(jnp.asarray(table, jnp.float32), jnp)),
      np.arange(gaussian.NUM_SCALES))


def test_training_bits_are_at_least_evaluation_bits(tiny_model):
  x = jnp.asarray(smooth_image(128, 192)[None], jnp.float32) / 255.0
  module = MeanScaleHyperprior(tiny_model.config)
  evaluation = module.apply({'params': tiny_model.params}, x, training=False)
  train_y, train_z = [], []
  for i in range(8):
    out = module.apply({'params': tiny_model.params}, x, jax.random.PRNGKey(i),
                       training=True)
    train_y.append(float(out['y_bits'][0]))
    train_z.append(float(out['z_bits'][0]))
  assert np.mean(train_y) >= float(evaluation['y_bits'][0])
  # The untrained density of z is nearly flat over one bin, so there the two agree
  # to within the noise of 8 draws (0.05% measured), either way.
  assert np.mean(train_z) >= 0.995 * float(evaluation['z_bits'][0])


def test_host_float64_hyper_synthesis_matches_the_flax_module(shipped_model):
  from iac_jax.codec import entropy_parameters
  from iac_jax.codec.entropy_models import gaussian as gaussian_model
  from iac_jax.codec.hyperprior import MeanScaleHyperprior
  z = np.random.default_rng(0).integers(-4, 5, (1, 3, 5, shipped_model.config.num_filters))
  mu, sigma = MeanScaleHyperprior(shipped_model.config).apply(
      {'params': shipped_model.params}, jnp.asarray(z, jnp.float32), method='hyper_synthesis')
  mu64, sigma64 = entropy_parameters.hyper_synthesis(shipped_model.params['h_s'], z)
  assert mu64.dtype == np.float64 and mu64.shape == mu.shape == (1, 12, 20, 96)
  np.testing.assert_allclose(mu64, mu, atol=1e-4)
  np.testing.assert_allclose(sigma64, sigma, rtol=1e-5, atol=1e-5)
  same = entropy_parameters.scale_indexes(sigma64) == gaussian_model.scale_indexes(sigma)
  assert same.mean() > 0.999


def test_medians_are_where_the_density_cdf_is_one_half():
  from iac_jax.codec.entropy_models import factorized  # pylint: disable=g-import-not-at-top
  params = FactorizedDensity(6).init(jax.random.PRNGKey(3), jnp.zeros((1, 6)))['params']
  params = jax.tree.map(lambda a: a + 0.3 * jax.random.normal(jax.random.PRNGKey(4), a.shape),
                        params)
  medians = factorized.density_medians(params)
  logits = factorized.cdf_logits(params, medians[:, None])
  np.testing.assert_allclose(logits, 0.0, atol=1e-4)
  # The float64 NumPy path agrees, and the medians are not trivially zero.
  np64 = factorized.density_medians(jax.tree.map(lambda a: np.asarray(a, np.float64), params),
                                    xp=np)
  np.testing.assert_allclose(np64, medians, atol=1e-4)
  assert float(jnp.max(jnp.abs(medians))) > 0.1


def test_z_is_quantized_around_the_medians_and_coded_relative_to_them():
  from iac_jax.codec.entropy_models import factorized  # pylint: disable=g-import-not-at-top
  module = FactorizedDensity(3, init_scale=1.0)  # narrow: a shifted bin costs other bits
  params = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))['params']
  params = dict(params, medians=jnp.array([0.3, -2.4, 7.45]))
  z = jnp.array([[0.2, -2.0, 7.0], [1.4, -2.95, 8.0]])
  z_hat = module.apply({'params': params}, z, method='quantize')
  np.testing.assert_allclose(z_hat, [[0.3, -2.4, 7.45], [1.3, -3.4, 8.45]], atol=1e-6)
  # Evaluation bits are those of z_hat; the coding table of channel c gives symbol k
  # the probability of the bin around k + m_c.
  bits = module.apply({'params': params}, z, method='bits')
  lik = module.apply({'params': params}, z_hat, method='likelihood')
  np.testing.assert_allclose(bits, -np.log2(np.asarray(lik)), rtol=1e-5)
  tables = factorized.factorized_tables(jax.tree.map(np.asarray, params))
  from iac_jax.codec.entropy_models.tables import code_lengths  # pylint: disable=g-import-not-at-top
  p64 = {k: np.asarray(v, np.float64)[c_slice] for k, v in params.items()
         for c_slice in [slice(None)]}
  for c, m in enumerate(p64['medians']):
    k = tables.offsets[c] + np.arange(tables.sizes[c])
    one = {n: v[c:c + 1] for n, v in p64.items() if n != 'medians'}
    edges = np.concatenate([k - 0.5, k[-1:] + 0.5])[None] + m
    pmf = np.diff(1 / (1 + np.exp(-factorized.cdf_logits(one, edges, np))))[0]
    big = pmf > 1e-2
    assert big.sum() >= 2
    # To within the count rounding the table settles on its most probable symbols.
    np.testing.assert_allclose(code_lengths(tables, c)[big], -np.log2(pmf[big]), atol=0.15)
