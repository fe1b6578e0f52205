"""Layers of the hyperprior codec that Flax does not ship."""

from iac_jax.layers import initializers
from iac_jax.layers.gdn import GDN
from iac_jax.layers.upsampling import SubpixelConvTranspose

__all__ = ['GDN', 'SubpixelConvTranspose', 'initializers']
