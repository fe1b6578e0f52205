"""The four transforms of the mean-scale hyperprior (Minnen, Balle, Toderici 2018),
layer for layer as CompressAI's `MeanScaleHyperprior` ("mbt2018-mean"):

g_a:  conv5/2 N, GDN, conv5/2 N, GDN, conv5/2 N, GDN, conv5/2 M
g_s:  deconv5/2 N, IGDN, deconv5/2 N, IGDN, deconv5/2 N, IGDN, deconv5/2 3
h_a:  conv3/1 N, LeakyReLU, conv5/2 N, LeakyReLU, conv5/2 N
h_s:  deconv5/2 M, LeakyReLU, deconv5/2 3M/2, LeakyReLU, conv3/1 2M -> (scales, means)

Convolutions pad k // 2 on each side (CompressAI's `conv`; 'SAME' for these odd
kernels and even sizes), transposed ones are PyTorch's (`layers.upsampling`); all are
initialized as PyTorch initializes them. LeakyReLU has PyTorch's slope 0.01.

Images are float32[B, H, W, 3] in [0, 1] with H, W multiples of 64.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from iac_jax.codec.layers import GDN, StridedConv, SubpixelConvTranspose, initializers

LEAKY_SLOPE = 0.01


def leaky_relu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, LEAKY_SLOPE)


def _conv(x: jax.Array, features: int, kernel_size: int, stride: int, name: str
          ) -> jax.Array:
  if (kernel_size, stride) == (5, 2):
    return StridedConv(features, name=name)(x)  # the same layer, faster gradients
  k = kernel_size
  p = k // 2
  init = initializers.uniform_fan_in(initializers.conv_fan_in(k, x.shape[-1]))
  return nn.Conv(features, (k, k), strides=(stride, stride), padding=((p, p), (p, p)),
                 kernel_init=init, bias_init=init, name=name)(x)


class AnalysisTransform(nn.Module):
  """g_a: image float32[B, H, W, 3] -> y float32[B, H/16, W/16, M]."""

  num_filters: int
  num_latents: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(3):
      x = _conv(x, self.num_filters, 5, 2, f'conv{i}')
      x = GDN(name=f'gdn{i}')(x)
    return _conv(x, self.num_latents, 5, 2, 'conv3')


class SynthesisTransform(nn.Module):
  """g_s: y_hat float32[B, h, w, M] -> image float32[B, 16h, 16w, 3]."""

  num_filters: int

  @nn.compact
  def __call__(self, y: jax.Array) -> jax.Array:
    for i in range(3):
      y = SubpixelConvTranspose(self.num_filters, name=f'deconv{i}')(y)
      y = GDN(inverse=True, name=f'igdn{i}')(y)
    return SubpixelConvTranspose(3, name='deconv3')(y)


class HyperAnalysisTransform(nn.Module):
  """h_a: y float32[B, h, w, M] -> z float32[B, h/4, w/4, N]."""

  num_filters: int

  @nn.compact
  def __call__(self, y: jax.Array) -> jax.Array:
    z = leaky_relu(_conv(y, self.num_filters, 3, 1, 'conv0'))
    z = leaky_relu(_conv(z, self.num_filters, 5, 2, 'conv1'))
    return _conv(z, self.num_filters, 5, 2, 'conv2')


class HyperSynthesisTransform(nn.Module):
  """h_s: z_hat float32[B, h, w, N] -> (mu, raw scale) each float32[B, 4h, 4w, M].

  The last layer's 2M channels are (scales, means), in that order, as CompressAI
  splits them; the raw scale is lower-bounded into sigma by the Gaussian model.
  """

  num_latents: int

  @nn.compact
  def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
    m = self.num_latents
    h = leaky_relu(SubpixelConvTranspose(m, name='deconv0')(z))
    h = leaky_relu(SubpixelConvTranspose(m * 3 // 2, name='deconv1')(h))
    params = _conv(h, 2 * m, 3, 1, 'conv2')
    scale, mu = params[..., :m], params[..., m:]
    return mu, scale
