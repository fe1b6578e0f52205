"""Transposed convolution computed as a stride-1 convolution plus depth-to-space.

The layer is PyTorch's `ConvTranspose2d(kernel_size=5, stride=2, padding=2,
output_padding=1)`, CompressAI's `deconv`: input pixel `i` adds `K[k] x[i]` to output
pixel `o = 2i + k - 2`. So output `o = 2m + r` takes input pixels `i = m - 1, m, m + 1`
(3x3 taps `t = i - m + 1`) with kernel taps `k = 4 - 2t + r` (zero outside 0..4), and
each of the four output phases (r, c) is a 3x3 stride-1 correlation of the undilated
input with a sub-kernel gathered from the 5x5 kernel, `S_rc[t, u] = K[4 - 2t + r,
4 - 2u + c]`. Stacking the four sub-kernels on the output-channel axis and
interleaving the result (depth-to-space) computes the same function as the
transposed convolution.

Why: XLA's CPU backend runs the dilated convolutions behind `conv_transpose` and
its gradients about 25x slower than PyTorch, while plain convolutions run at par.
The parameter keeps the transposed-convolution layout `[5, 5, in, out]`, PyTorch's
weight `W[in, out, kh, kw]` transposed to `K[kh, kw, in, out]` without a flip, so the
checkpoint format does not depend on how the layer is computed.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from iac_jax.codec.layers import initializers


def _subpixel_gather_indices(kernel_size: int, stride: int) -> np.ndarray:
  """For each phase r and tap t, the transposed-kernel index, or -1 for zero."""
  if kernel_size != 5 or stride != 2:
    raise NotImplementedError('only 5x5 stride-2 transposed convolutions')
  idx = np.full((stride, 3), -1, dtype=np.int32)
  for r in range(stride):
    for t in range(3):
      j = 4 - 2 * t + r
      if 0 <= j < kernel_size:
        idx[r, t] = j
  return idx


def subpixel_kernel(kernel: jax.Array) -> jax.Array:
  """Maps a `[5, 5, in, out]` transposed kernel to a `[3, 3, in, 4 * out]` kernel.

  The output channels are ordered (r, c, out), matching `depth_to_space`.
  """
  idx = _subpixel_gather_indices(kernel.shape[0], 2)
  valid = idx >= 0
  safe = np.where(valid, idx, 0)
  # g[r, t, c, u] = K[idx[r, t], idx[c, u]] masked where either index is invalid.
  g = kernel[safe[:, :, None, None], safe[None, None, :, :]]
  mask = (valid[:, :, None, None] & valid[None, None, :, :]).astype(kernel.dtype)
  g = g * mask[..., None, None]  # [r, t, c, u, in, out]
  g = jnp.transpose(g, (1, 3, 4, 0, 2, 5))  # [t, u, in, r, c, out]
  t, u, cin, r, c, cout = g.shape
  return g.reshape(t, u, cin, r * c * cout)


def depth_to_space(x: jax.Array, block: int) -> jax.Array:
  """`[B, H, W, b*b*C]` with channels ordered (r, c, C) -> `[B, bH, bW, C]`."""
  b, h, w, d = x.shape
  c = d // (block * block)
  x = x.reshape(b, h, w, block, block, c)
  x = jnp.transpose(x, (0, 1, 3, 2, 4, 5))
  return x.reshape(b, h * block, w * block, c)


def conv_transpose_reference(x: jax.Array, kernel: jax.Array,
                             stride: int = 2) -> jax.Array:
  """The function this layer computes, as PyTorch defines it: the correlation of the
  stride-dilated input, padded (2, 3), with the spatially flipped kernel (slow on CPU)."""
  return jax.lax.conv_general_dilated(
      x, kernel[::-1, ::-1], window_strides=(1, 1), padding=((2, 3), (2, 3)),
      lhs_dilation=(stride, stride), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


class SubpixelConvTranspose(nn.Module):
  """5x5 stride-2 'SAME' transposed convolution with bias, computed sub-pixel.

  Initialized as PyTorch's `ConvTranspose2d` (`initializers`). Equals CompressAI's
  `deconv` (padding 2, output_padding 1) with its weight `W[in, out, kh, kw]` stored
  here as `W[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)`.
  """

  features: int
  kernel_size: int = 5
  stride: int = 2

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    init = initializers.uniform_fan_in(
        initializers.conv_transpose_fan_in(self.kernel_size, self.features))
    kernel = self.param(
        'kernel', init, (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
    bias = self.param('bias', init, (self.features,))
    y = jax.lax.conv_general_dilated(
        x, subpixel_kernel(kernel).astype(x.dtype), window_strides=(1, 1),
        padding='SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return depth_to_space(y, self.stride) + bias
