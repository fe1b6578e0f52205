"""Strided convolution whose input gradient is computed as a stride-1 convolution.

The layer is CompressAI's `conv(kernel_size=5, stride=2)`: output pixel `o` reads
input pixels `2o - 2 .. 2o + 2` (padding 2). Its forward pass is XLA's strided
convolution as it stands. Its input gradient, though, is a transposed convolution,
which XLA's CPU backend runs as a dilated one, 5x slower than the forward pass
(`benchmarks/README.md`). So the gradient is taken through the same function written
on the space-to-depth input instead: with `x'[m, n, (r, c, C)] = x[2m + r, 2n + c, C]`
the layer is a 3x3 stride-1 convolution of `x'` with the kernel `K'[t, u, (r, c, C)]
= K[2t + r, 2u + c]` (K zero-padded to 6x6), and its transpose is a plain
convolution. Forward values, and so bitstreams, are exactly those of the strided
convolution; only the rounding of the input gradient differs.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from iac_jax.codec.layers import initializers

_DIMS = ('NHWC', 'HWIO', 'NHWC')


def space_to_depth(x: jax.Array) -> jax.Array:
  """`[B, 2H, 2W, C]` -> `[B, H, W, 4C]`, channels ordered (r, c, C)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def space_to_depth_kernel(kernel: jax.Array) -> jax.Array:
  """A `[5, 5, in, out]` stride-2 kernel as the `[3, 3, 4 in, out]` kernel of the
  same layer on `space_to_depth` inputs."""
  _, _, cin, cout = kernel.shape
  k6 = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
  k6 = k6.reshape(3, 2, 3, 2, cin, cout).transpose(0, 2, 1, 3, 4, 5)
  return k6.reshape(3, 3, 4 * cin, cout)


def strided_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """XLA's 5x5 stride-2 convolution, padding 2 (CompressAI's)."""
  return jax.lax.conv_general_dilated(x, kernel, (2, 2), ((2, 2), (2, 2)),
                                      dimension_numbers=_DIMS)


def conv_on_space_to_depth(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The same layer as `strided_conv` (H, W even), as a stride-1 convolution."""
  return jax.lax.conv_general_dilated(space_to_depth(x), space_to_depth_kernel(kernel),
                                      (1, 1), ((1, 1), (1, 1)), dimension_numbers=_DIMS)


@jax.custom_vjp
def conv5x5_stride2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`[B, H, W, in]` (H, W even) * `[5, 5, in, out]` -> `[B, H/2, W/2, out]`."""
  return strided_conv(x, kernel)


def _fwd(x, kernel):
  return strided_conv(x, kernel), (x, kernel)


def _bwd(residuals, g):
  x, kernel = residuals
  # Both maps are linear in the argument transposed; nothing is recomputed.
  (dx,) = jax.linear_transpose(lambda v: conv_on_space_to_depth(v, kernel), x)(g)
  (dk,) = jax.linear_transpose(lambda k: strided_conv(x, k), kernel)(g)
  return dx, dk


conv5x5_stride2.defvjp(_fwd, _bwd)


class StridedConv(nn.Module):
  """5x5 stride-2 convolution with bias, padding 2: CompressAI's `conv(k=5, s=2)`.

  Parameters are named and shaped as `flax.linen.Conv`'s (`kernel [5, 5, in, out]`,
  `bias [out]`) and initialized as PyTorch's `Conv2d`. Odd input sizes are computed
  by the plain strided convolution.
  """

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    init = initializers.uniform_fan_in(initializers.conv_fan_in(5, x.shape[-1]))
    kernel = self.param('kernel', init, (5, 5, x.shape[-1], self.features))
    bias = self.param('bias', init, (self.features,))
    kernel = kernel.astype(x.dtype)
    even = x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0
    y = conv5x5_stride2(x, kernel) if even else strided_conv(x, kernel)
    return y + bias
