import jax
import jax.numpy as jnp
import numpy as np

from iac_jax.codec import quantization


def test_round_st_rounds_forward_with_unit_gradient():
  x = jnp.array([-1.6, -0.4, 0.2, 0.5001, 2.49])
  np.testing.assert_array_equal(quantization.round_st(x), jnp.round(x))
  np.testing.assert_array_equal(jax.grad(lambda v: jnp.sum(quantization.round_st(v)))(x),
                                np.ones(5))


def test_quantize_rounds_around_the_offset():
  x = jnp.array([0.3, 1.74, -2.2])
  mu = jnp.array([0.25, 0.5, -0.1])
  np.testing.assert_allclose(quantization.quantize(x, mu), jnp.round(x - mu) + mu)
  g = jax.grad(lambda v: jnp.sum(quantization.quantize(v, mu) * 3.0))(x)
  np.testing.assert_allclose(g, 3.0 * np.ones(3))


def test_uniform_noise_is_bounded_and_centred():
  x = jnp.zeros((100000,))
  n = quantization.add_uniform_noise(x, jax.random.PRNGKey(0))
  assert float(n.min()) >= -0.5 and float(n.max()) <= 0.5
  assert abs(float(n.mean())) < 0.01
