import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iac_jax.codec.configs import get_config
from iac_jax.codec.entropy_models import factorized
from iac_jax.codec.hyperprior import MeanScaleHyperprior, init_params
from iac_jax.codec.layers import GDN, StridedConv, downsampling
from iac_jax.codec.layers.gdn import lower_bound
from iac_jax.codec.layers.upsampling import SubpixelConvTranspose, conv_transpose_reference
from iac_jax.codec.losses import rate_distortion


def torch_conv_transpose(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  """PyTorch's ConvTranspose2d(5, stride=2, padding=2, output_padding=1) by its
  definition: input pixel i adds K[k] x[i] to output pixel 2i + k - 2."""
  b, h, w, _ = x.shape
  out = np.zeros((b, 2 * h + 4, 2 * w + 4, kernel.shape[-1]))
  for a in range(5):
    for c in range(5):
      out[:, a:a + 2 * h:2, c:c + 2 * w:2] += np.einsum('bhwi,io->bhwo', x, kernel[a, c])
  return out[:, 2:2 + 2 * h, 2:2 + 2 * w]


def test_subpixel_transposed_conv_is_pytorchs_conv_transpose():
  rng = np.random.default_rng(0)
  kernel = rng.normal(size=(5, 5, 3, 2)).astype(np.float32)
  for shape in [(1, 4, 5, 3), (2, 1, 1, 3), (1, 6, 2, 3)]:
    x = rng.normal(size=shape).astype(np.float32)
    got = SubpixelConvTranspose(2).apply(
        {'params': {'kernel': kernel, 'bias': np.zeros(2, np.float32)}}, x)
    np.testing.assert_allclose(got, torch_conv_transpose(x, kernel), atol=1e-4)


def test_convolutions_pad_like_pytorch():
  """conv5/2 pads 2 on each side (CompressAI's conv), not 'SAME''s (1, 2)."""
  from iac_jax.codec.transforms import _conv  # pylint: disable=g-import-not-at-top
  x = np.zeros((1, 8, 8, 1), np.float32)
  x[0, 0, 0, 0] = 1.0  # a corner pixel reaches output (0, 0) only through tap (2, 2)
  kernel = np.zeros((5, 5, 1, 1), np.float32)
  kernel[2, 2] = 1.0
  class One(nn.Module):
    @nn.compact
    def __call__(self, x):
      return _conv(x, 1, 5, 2, 'c')
  y = One().apply({'params': {'c': {'kernel': kernel, 'bias': np.zeros(1, np.float32)}}}, x)
  assert y.shape == (1, 4, 4, 1) and float(y[0, 0, 0, 0]) == 1.0


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


def _plain_strided_conv(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (2, 2), ((2, 2), (2, 2)),
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


@pytest.mark.parametrize('shape', [(2, 8, 6, 3), (1, 2, 2, 3), (1, 7, 5, 3)])
def test_strided_conv_forward_is_the_plain_strided_conv_bit_for_bit(shape):
  kernel = jax.random.normal(jax.random.PRNGKey(0), (5, 5, 3, 4))
  bias = jax.random.normal(jax.random.PRNGKey(1), (4,))
  x = jax.random.normal(jax.random.PRNGKey(2), shape)
  got = StridedConv(4).apply({'params': {'kernel': kernel, 'bias': bias}}, x)
  want = _plain_strided_conv(x, kernel) + bias
  assert got.shape == (shape[0], (shape[1] + 1) // 2, (shape[2] + 1) // 2, 4)
  np.testing.assert_array_equal(got, want)  # the same op: bitstreams do not change


def test_space_to_depth_form_is_the_same_layer():
  kernel = jax.random.normal(jax.random.PRNGKey(3), (5, 5, 3, 4))
  x = jax.random.normal(jax.random.PRNGKey(4), (2, 10, 6, 3))
  np.testing.assert_allclose(downsampling.conv_on_space_to_depth(x, kernel),
                             _plain_strided_conv(x, kernel), atol=1e-5, rtol=1e-5)


def test_strided_conv_gradients_match_autodiff_of_the_plain_conv():
  kernel = jax.random.normal(jax.random.PRNGKey(5), (5, 5, 3, 4))
  x = jax.random.normal(jax.random.PRNGKey(6), (2, 8, 12, 3))
  loss = lambda f: lambda x, k: jnp.sum(jnp.sin(f(x, k)))
  got = jax.grad(loss(downsampling.conv5x5_stride2), argnums=(0, 1))(x, kernel)
  want = jax.grad(loss(_plain_strided_conv), argnums=(0, 1))(x, kernel)
  for g, w in zip(got, want):
    assert float(jnp.abs(w).max()) > 1.0  # not trivially zero
    np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)


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
  beta = np.asarray(beta_p, np.float64)**2 - 2.0**-36  # CompressAI's pedestal (2^-18)^2
  gamma = np.asarray(gamma_p, np.float64)**2 - 2.0**-36
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


def test_every_parameter_but_the_medians_receives_gradients():
  config = get_config('tiny')
  params = init_params(config, jax.random.PRNGKey(0))
  # At initialization z is tiny; with the density's medians (as training keeps them)
  # z_hat = round(z - m) + m is non-zero, so every path into h_s carries gradient.
  params = dict(params, z_prior=factorized.with_fresh_medians(params['z_prior']))
  x = 255.0 * jax.random.uniform(jax.random.PRNGKey(1), (2, 128, 128, 3))
  grads = jax.grad(lambda p: rate_distortion(
      p, MeanScaleHyperprior(config), x, jax.random.PRNGKey(2), 10.0)[0])(params)
  for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
    name = jax.tree_util.keystr(path)
    assert bool(jnp.all(jnp.isfinite(g))), name
    if name == "['z_prior']['medians']":  # set by training, moved by no loss
      assert float(jnp.max(jnp.abs(g))) == 0, name
    else:
      assert float(jnp.max(jnp.abs(g))) > 0, name


# Parameter shapes of CompressAI's MeanScaleHyperprior(N, M) (compressai/models/google.py,
# entropy_models.py: EntropyBottleneck filters (3, 3, 3, 3)), in its own layouts, with the
# entropy bottleneck's names as the zoo's checkpoints spell them:
# Conv2d [out, in, k, k], ConvTranspose2d [in, out, k, k], GDN beta [C], gamma [C, C].
def compressai_shapes(n: int, m: int) -> dict[str, tuple[int, ...]]:
  conv = lambda i, o, k=5: {'weight': (o, i, k, k), 'bias': (o,)}
  deconv = lambda i, o: {'weight': (i, o, 5, 5), 'bias': (o,)}
  gdn = lambda c: {'beta': (c,), 'gamma': (c, c)}
  layers = {
      'g_a.0': conv(3, n), 'g_a.1': gdn(n), 'g_a.2': conv(n, n), 'g_a.3': gdn(n),
      'g_a.4': conv(n, n), 'g_a.5': gdn(n), 'g_a.6': conv(n, m),
      'g_s.0': deconv(m, n), 'g_s.1': gdn(n), 'g_s.2': deconv(n, n), 'g_s.3': gdn(n),
      'g_s.4': deconv(n, n), 'g_s.5': gdn(n), 'g_s.6': deconv(n, 3),
      'h_a.0': conv(m, n, 3), 'h_a.2': conv(n, n), 'h_a.4': conv(n, n),
      'h_s.0': deconv(n, m), 'h_s.2': deconv(m, m * 3 // 2),
      'h_s.4': conv(m * 3 // 2, m * 2, 3),
  }
  shapes = {f'{k}.{p}': s for k, v in layers.items() for p, s in v.items()}
  widths = (1, 3, 3, 3, 3, 1)
  for i in range(5):
    shapes[f'entropy_bottleneck._matrices.{i}'] = (n, widths[i + 1], widths[i])
    shapes[f'entropy_bottleneck._biases.{i}'] = (n, widths[i + 1], 1)
    if i < 4:
      shapes[f'entropy_bottleneck._factors.{i}'] = (n, widths[i + 1], 1)
  return shapes


# Our parameter path for each CompressAI module, in the reference's layer order.
_OURS = {
    'g_a.0': 'g_a/conv0', 'g_a.1': 'g_a/gdn0', 'g_a.2': 'g_a/conv1', 'g_a.3': 'g_a/gdn1',
    'g_a.4': 'g_a/conv2', 'g_a.5': 'g_a/gdn2', 'g_a.6': 'g_a/conv3',
    'g_s.0': 'g_s/deconv0', 'g_s.1': 'g_s/igdn0', 'g_s.2': 'g_s/deconv1',
    'g_s.3': 'g_s/igdn1', 'g_s.4': 'g_s/deconv2', 'g_s.5': 'g_s/igdn2',
    'g_s.6': 'g_s/deconv3', 'h_a.0': 'h_a/conv0', 'h_a.2': 'h_a/conv1',
    'h_a.4': 'h_a/conv2', 'h_s.0': 'h_s/deconv0', 'h_s.2': 'h_s/deconv1',
    'h_s.4': 'h_s/conv2',
}


def _as_compressai_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
  if name == 'kernel' and len(shape) == 4:  # ours [kh, kw, in, out]
    kh, kw, i, o = shape
    return (o, i, kh, kw)  # Conv2d; ConvTranspose2d is compared as [in, out] below
  return shape


@pytest.mark.parametrize('config_name,n,m', [('small', 64, 96), ('paper', 128, 192),
                                              ('paper-hi', 192, 320)])
def test_parameter_shapes_are_compressais(config_name, n, m):
  config = get_config(config_name)
  assert (config.num_filters, config.num_latents) == (n, m)
  params = jax.eval_shape(lambda: init_params(config, jax.random.PRNGKey(0)))
  want = compressai_shapes(n, m)
  got = {}
  for key, path in _OURS.items():
    part, layer = path.split('/')
    for name, leaf in params[part][layer].items():
      shape = tuple(leaf.shape)
      if name == 'kernel':
        kh, kw, i, o = shape
        shape = (i, o, kh, kw) if 'deconv' in layer else (o, i, kh, kw)
        name = 'weight'
      got[f'{key}.{name}'] = shape
  for i in range(5):
    got[f'entropy_bottleneck._matrices.{i}'] = params['z_prior'][f'matrix{i}'].shape
    got[f'entropy_bottleneck._biases.{i}'] = params['z_prior'][f'bias{i}'].shape
    if i < 4:
      got[f'entropy_bottleneck._factors.{i}'] = params['z_prior'][f'factor{i}'].shape
  assert got == want
  assert params['z_prior']['medians'].shape == (n,)  # CompressAI: quantiles[:, 0, 1]
  # Nothing else: every parameter of ours is accounted for.
  ours = sum(len(v) for part in ('g_a', 'g_s', 'h_a', 'h_s') for v in params[part].values())
  assert ours == sum(1 for k in want if not k.startswith('entropy'))
  assert len(params['z_prior']) == 15


def test_layer_order_is_the_references():
  """Each transform applies its layers in CompressAI's order (Flax records the call
  order of submodules in the parameter tree's insertion order)."""
  params = init_params(get_config('tiny'), jax.random.PRNGKey(0))
  assert list(params['g_a']) == ['conv0', 'gdn0', 'conv1', 'gdn1', 'conv2', 'gdn2', 'conv3']
  assert list(params['g_s']) == ['deconv0', 'igdn0', 'deconv1', 'igdn1', 'deconv2', 'igdn2',
                                 'deconv3']
  assert list(params['h_a']) == ['conv0', 'conv1', 'conv2']
  assert list(params['h_s']) == ['deconv0', 'deconv1', 'conv2']


def test_hyper_transforms_use_leaky_relu_and_split_scales_before_means():
  from iac_jax.codec.transforms import HyperSynthesisTransform  # pylint: disable=g-import-not-at-top
  m = 4
  hs = HyperSynthesisTransform(m)
  z = jnp.ones((1, 1, 1, 2))
  params = hs.init(jax.random.PRNGKey(0), z)['params']
  # conv2 outputs channel c as c: scales are channels [0, M), means [M, 2M).
  kernel = np.zeros_like(params['conv2']['kernel'])
  bias = np.arange(2 * m, dtype=np.float32)
  params = dict(params, conv2={'kernel': kernel, 'bias': bias})
  mu, scale = hs.apply({'params': params}, z)
  np.testing.assert_array_equal(scale[0, 0, 0], np.arange(m))
  np.testing.assert_array_equal(mu[0, 0, 0], np.arange(m, 2 * m))
  # LeakyReLU, not ReLU: a negative pre-activation leaks with slope 0.01.
  from iac_jax.codec.transforms import leaky_relu  # pylint: disable=g-import-not-at-top
  np.testing.assert_allclose(leaky_relu(jnp.array([-2.0, 3.0])), [-0.02, 3.0])


def test_pytorch_initialization_bounds():
  """Weights and biases are U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch draws them;
  for a transposed convolution fan_in counts its output channels."""
  params = init_params(get_config('small'), jax.random.PRNGKey(0))
  conv = params['g_a']['conv1']['kernel']  # 5x5, 64 -> 64
  deconv = params['g_s']['deconv3']['kernel']  # 5x5, 64 -> 3
  for leaf, fan_in in ((conv, 64 * 25), (deconv, 3 * 25),
                       (params['g_a']['conv1']['bias'], 64 * 25),
                       (params['g_s']['deconv3']['bias'], 3 * 25)):
    bound = 1 / np.sqrt(fan_in)
    assert float(jnp.max(jnp.abs(leaf))) <= bound
    if leaf.size >= 64:  # enough draws to come near the bound
      assert float(jnp.max(jnp.abs(leaf))) > 0.9 * bound
