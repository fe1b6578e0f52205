import jax
import jax.numpy as jnp
import numpy as np

from iac_jax.configs import get_config
from iac_jax.hyperprior import MeanScaleHyperprior, init_params
from iac_jax.layers import GDN
from iac_jax.layers.gdn import lower_bound
from iac_jax.layers.upsampling import SubpixelConvTranspose, conv_transpose_reference
from iac_jax.losses import rate_distortion


def test_subpixel_transposed_conv_equals_conv_transpose():
  rng = jax.random.split(jax.random.PRNGKey(0), 3)
  kernel = jax.random.normal(rng[0], (5, 5, 6, 4))
  bias = jax.random.normal(rng[1], (4,))
  for shape in [(2, 7, 5, 6), (1, 1, 1, 6), (1, 4, 8, 6)]:
    x = jax.random.normal(rng[2], shape)
    got = SubpixelConvTranspose(4).apply({'params': {'kernel': kernel, 'bias': bias}}, x)
    want = conv_transpose_reference(x, kernel) + bias
    assert got.shape == (shape[0], 2 * shape[1], 2 * shape[2], 4)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_subpixel_gradients_match_conv_transpose():
  kernel = jax.random.normal(jax.random.PRNGKey(1), (5, 5, 3, 2))
  x = jax.random.normal(jax.random.PRNGKey(2), (1, 6, 6, 3))
  f = lambda k: jnp.sum(jnp.sin(SubpixelConvTranspose(2).apply(
      {'params': {'kernel': k, 'bias': jnp.zeros(2)}}, x)))
  g = lambda k: jnp.sum(jnp.sin(conv_transpose_reference(x, k)))
  np.testing.assert_allclose(jax.grad(f)(kernel), jax.grad(g)(kernel), atol=1e-4)


def test_gdn_and_inverse_gdn_invert_each_other_approximately():
  x = 0.1 * jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 5))
  gdn, igdn = GDN(), GDN(inverse=True)
  params = gdn.init(jax.random.PRNGKey(1), x)
  y = gdn.apply(params, x)
  back = igdn.apply(params, y)  # same beta, gamma: an approximate inverse
  assert float(jnp.max(jnp.abs(back - x))) < 1e-3
  assert float(jnp.max(jnp.abs(y - x))) > 1e-5  # and GDN is not the identity


def test_gdn_matches_its_definition_in_float64():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 5, 4))
  beta_p = 1.0 + jax.random.uniform(jax.random.PRNGKey(1), (4,))
  gamma_p = 0.5 * jax.random.uniform(jax.random.PRNGKey(2), (4, 4))
  params = {'params': {'beta': beta_p, 'gamma': gamma_p}}
  xs = np.asarray(x, np.float64)
  beta = np.asarray(beta_p, np.float64)**2 - 2.0**-18
  gamma = np.asarray(gamma_p, np.float64)**2 - 2.0**-18
  norm = beta + np.einsum('bhwj,ij->bhwi', xs * xs, gamma)
  np.testing.assert_allclose(GDN().apply(params, x), xs / np.sqrt(norm), rtol=1e-5)
  np.testing.assert_allclose(GDN(inverse=True).apply(params, x), xs * np.sqrt(norm),
                             rtol=1e-5)


def test_gdn_parameters_stay_above_their_bounds():
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 4, 4, 3))
  params = GDN().init(jax.random.PRNGKey(1), x)['params']
  params = {'beta': -jnp.ones(3), 'gamma': -jnp.ones((3, 3))}
  y = GDN().apply({'params': params}, x)
  assert bool(jnp.all(jnp.isfinite(y)))
  # beta clamped at beta_min: y = x / sqrt(1e-6) is finite and large but bounded.
  assert float(jnp.max(jnp.abs(y))) <= float(jnp.max(jnp.abs(x))) / np.sqrt(1e-6) * 1.01


def test_lower_bound_passes_gradients_that_raise_the_value():
  grad = jax.grad(lambda x: -jnp.sum(lower_bound(x, 1.0)))  # descent raises x
  np.testing.assert_array_equal(grad(jnp.array([0.0, 2.0])), [-1.0, -1.0])
  grad = jax.grad(lambda x: jnp.sum(lower_bound(x, 1.0)))  # descent would lower x
  np.testing.assert_array_equal(grad(jnp.array([0.0, 2.0])), [0.0, 1.0])


def test_every_parameter_receives_gradients():
  config = get_config('tiny')
  params = init_params(config, jax.random.PRNGKey(0))
  # At initialization z is tiny and rounds to zero, which starves h_s of signal;
  # inputs on the 0..255 scale make z_hat non-zero so every path carries gradient.
  x = 255.0 * jax.random.uniform(jax.random.PRNGKey(1), (2, 128, 128, 3))
  grads = jax.grad(lambda p: rate_distortion(
      p, MeanScaleHyperprior(config), x, jax.random.PRNGKey(2), 10.0)[0])(params)
  for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
    assert bool(jnp.all(jnp.isfinite(g))), jax.tree_util.keystr(path)
    assert float(jnp.max(jnp.abs(g))) > 0, jax.tree_util.keystr(path)
