"""The four transforms of the mean-scale hyperprior (Minnen, Balle, Toderici 2018).

g_a:  conv5/2 N, GDN, conv5/2 N, GDN, conv5/2 N, GDN, conv5/2 M
g_s:  deconv5/2 N, IGDN, deconv5/2 N, IGDN, deconv5/2 N, IGDN, deconv5/2 3
h_a:  conv3/1 N, ReLU, conv5/2 N, ReLU, conv5/2 N
h_s:  deconv5/2 N, ReLU, deconv5/2 3N/2, ReLU, conv3/1 2M  -> (mu, sigma)

Images are float32[B, H, W, 3] in [0, 1] with H, W multiples of 64.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from iac_jax.layers import GDN, SubpixelConvTranspose


def _down(features: int, name: str) -> nn.Conv:
  return nn.Conv(features, (5, 5), strides=(2, 2), padding='SAME', name=name)


class AnalysisTransform(nn.Module):
  """g_a: image float32[B, H, W, 3] -> y float32[B, H/16, W/16, M]."""

  num_filters: int
  num_latents: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(3):
      x = _down(self.num_filters, f'conv{i}')(x)
      x = GDN(name=f'gdn{i}')(x)
    return _down(self.num_latents, 'conv3')(x)


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
    z = nn.relu(nn.Conv(self.num_filters, (3, 3), name='conv0')(y))
    z = nn.relu(_down(self.num_filters, 'conv1')(z))
    return _down(self.num_filters, 'conv2')(z)


class HyperSynthesisTransform(nn.Module):
  """h_s: z_hat float32[B, h, w, N] -> (mu, raw scale) each float32[B, 4h, 4w, M].

  The raw scale is mapped to a positive sigma by the Gaussian entropy model.
  """

  num_filters: int
  num_latents: int

  @nn.compact
  def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = nn.relu(SubpixelConvTranspose(self.num_filters, name='deconv0')(z))
    h = nn.relu(SubpixelConvTranspose(
        self.num_filters * 3 // 2, name='deconv1')(h))
    params = nn.Conv(2 * self.num_latents, (3, 3), name='conv2')(h)
    mu, scale = params[..., :self.num_latents], params[..., self.num_latents:]
    return mu, scale
