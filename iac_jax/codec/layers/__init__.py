"""Layers of the hyperprior codec that Flax does not ship."""

from iac_jax.codec.layers import initializers
from iac_jax.codec.layers.downsampling import StridedConv
from iac_jax.codec.layers.gdn import GDN
from iac_jax.codec.layers.upsampling import SubpixelConvTranspose

__all__ = ['GDN', 'StridedConv', 'SubpixelConvTranspose', 'initializers']
