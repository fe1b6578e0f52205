import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iac_jax.codec.configs import ModelConfig
from iac_jax.codec.hyperprior import MeanScaleHyperprior, init_params
from iac_jax.training import latent_widening
from tests.conftest import smooth_image

NARROW = ModelConfig('narrow', num_filters=8, num_latents=12)
WIDE = ModelConfig('wide', num_filters=8, num_latents=20)


def _trained_like(config, seed=0):
  """Initial parameters moved away from their init, so that no block is special."""
  params = init_params(config, jax.random.PRNGKey(seed))
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
  return jax.tree.unflatten(tree, [
      a + 0.05 * jnp.abs(a).mean() * jax.random.normal(k, a.shape)
      for a, k in zip(leaves, keys)])


@functools.partial(jax.jit, static_argnums=0)
def _codec(config, params, x):
  module = MeanScaleHyperprior(config)
  apply = lambda method, *a: module.apply({'params': params}, *a, method=method)
  y, z = apply(module.analysis, x)
  z_hat = apply(module.quantize_z, z)
  mu, sigma = apply(module.hyper_synthesis, z_hat)
  y_hat = jnp.round(y - mu) + mu
  return {'y': y, 'z': z, 'mu': mu, 'sigma': sigma, 'y_hat': y_hat,
          'x_hat': apply(module.synthesis, y_hat)}


@pytest.fixture(scope='module')
def widened():
  params = _trained_like(NARROW)
  wide = latent_widening.widen_latents(params, NARROW, WIDE, jax.random.PRNGKey(7))
  x = jnp.asarray(smooth_image(64, 64, seed=3))[None]
  return params, wide, _codec(NARROW, params, x), _codec(WIDE, wide, x), x


def test_the_widened_model_has_the_wide_configs_shapes(widened):
  _, wide, *_ = widened
  template = init_params(WIDE, jax.random.PRNGKey(0))
  assert jax.tree.structure(wide) == jax.tree.structure(template)
  assert all(jax.tree.leaves(jax.tree.map(lambda a, b: a.shape == b.shape, wide, template)))


def test_the_widened_model_computes_the_original_one(widened):
  _, _, narrow, wide, _ = widened
  m = NARROW.num_latents
  np.testing.assert_allclose(wide['z'], narrow['z'], rtol=0, atol=1e-5)
  for key in ('y', 'mu', 'sigma', 'y_hat'):
    np.testing.assert_allclose(wide[key][..., :m], narrow[key][..., :m], rtol=0, atol=1e-4)
  np.testing.assert_allclose(wide['x_hat'], narrow['x_hat'], rtol=0, atol=1e-5)
  # The new channels are there, small, and nothing reads them yet.
  new_y = wide['y'][..., m:]
  assert 0 < float(jnp.abs(new_y).max()) < float(jnp.abs(narrow['y']).max())


def test_training_reaches_the_new_channels(widened):
  _, wide, _, _, x = widened
  module = MeanScaleHyperprior(WIDE)

  def loss(params):
    out = module.apply({'params': params}, x, jax.random.PRNGKey(0), training=True)
    return jnp.mean((out['x_hat'] - x)**2) + 1e-3 * jnp.mean(out['y_bits'])

  grads = jax.grad(loss)(wide)
  m = NARROW.num_latents
  # The zero weights from the new latents into g_s and h_a get gradients, as do the
  # new latents' own analysis weights: the new subnetwork can learn.
  assert float(jnp.abs(grads['g_s']['deconv0']['kernel'][:, :, m:, :]).max()) > 0
  assert float(jnp.abs(grads['h_a']['conv0']['kernel'][:, :, m:, :]).max()) > 0
  assert float(jnp.abs(grads['g_a']['conv3']['kernel'][..., m:]).max()) > 0


def test_widening_keeps_the_layers_that_do_not_depend_on_m(widened):
  params, wide, *_ = widened
  for transform, layer in (('g_a', 'conv1'), ('g_a', 'gdn2'), ('g_s', 'igdn0'),
                           ('g_s', 'deconv3'), ('h_a', 'conv2')):
    for key in params[transform][layer]:
      np.testing.assert_array_equal(wide[transform][layer][key],
                                    params[transform][layer][key])
  for key in params['z_prior']:
    np.testing.assert_array_equal(wide['z_prior'][key], params['z_prior'][key])


@pytest.mark.parametrize('wide', [
    ModelConfig('other-n', num_filters=16, num_latents=20),
    ModelConfig('same-m', num_filters=8, num_latents=12),
    ModelConfig('odd-m', num_filters=8, num_latents=15),
])
def test_widening_refuses_what_is_not_a_wider_latent(wide):
  with pytest.raises(ValueError):
    latent_widening.widen_latents(init_params(NARROW, jax.random.PRNGKey(0)), NARROW, wide,
                                  jax.random.PRNGKey(1))
