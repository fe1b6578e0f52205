"""PyTorch's default initialization of convolutions, so that training starts where
CompressAI's does.

`torch.nn.Conv2d` and `ConvTranspose2d` draw weight and bias from U(-b, b) with
`b = 1 / sqrt(fan_in)` (kaiming_uniform with a = sqrt(5)), where `fan_in` is the
weight's dimension 1 times the kernel area: input channels for a convolution, but
*output* channels for a transposed one (its weight is stored [in, out, kh, kw]).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def uniform_fan_in(fan_in: int):
  """Initializer of U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for any shape."""
  bound = 1.0 / float(fan_in)**0.5

  def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def conv_fan_in(kernel_size: int, in_features: int) -> int:
  """PyTorch's fan_in of a convolution."""
  return in_features * kernel_size * kernel_size


def conv_transpose_fan_in(kernel_size: int, out_features: int) -> int:
  """PyTorch's fan_in of a transposed convolution (its output channels)."""
  return out_features * kernel_size * kernel_size
