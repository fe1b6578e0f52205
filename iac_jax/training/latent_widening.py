"""More latent channels for a trained hyperprior, without changing what it computes.

`widen_latents` turns the parameters of a model with M latent channels into those of
the same architecture with M' > M, keeping the trained model inside: the first M
channels of `y`, of `mu` and of `sigma`, `z` and the reconstruction are those of the
original model (up to float rounding of the longer sums), and the M' - M new channels
are a fresh subnetwork that training can put to use.

Every layer whose shape depends on M gets the original weights in its old block and
fresh initial values (the wide config's own initialization) elsewhere, except the
weights *from* a new unit *into* an old one, which are zero:

- g_a's last convolution: old output channels as trained, new ones fresh, their
  weights scaled by `new_analysis_scale` so that the new `y` start near zero and cost
  almost no rate;
- g_s's first transposed convolution and h_a's first convolution: the new `y`
  channels' input weights are zero, so the image and `z` do not change;
- h_s: its hidden layers (M and 3M/2 units) grow the same way, and its last layer's
  (scales, means) halves each get the new channels' outputs behind the old ones.

Why: the latent width M bounds what the transforms can carry at high rates
(`benchmarks/latent_width_bound.py`), and a wider `y` costs little per step on a CPU
(most of the arithmetic is in the N-wide layers at high resolution). Widening a
trained model keeps the hours already spent on it. Measured so far
(`benchmarks/widen_fork.py`): in a 1,500-step fork of the 13.72-hour beta-10 model,
training switched the new channels off rather than use them.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from iac_jax.codec.configs import ModelConfig
from iac_jax.codec.hyperprior import init_params


def _np(tree: Any) -> Any:
  return jax.tree.map(lambda a: np.array(a, np.float32), tree)


def widen_latents(params: Any, config: ModelConfig, wide_config: ModelConfig,
                  rng: jax.Array, new_analysis_scale: float = 0.1) -> dict:
  """Parameters of `wide_config` that compute the model `params` of `config`.

  Args:
    params: parameter pytree of a model of `config`.
    config: its architecture.
    wide_config: the same N and z density, more latent channels M.
    rng: key of the new channels' initial values.
    new_analysis_scale: factor on the fresh weights and biases of the new `y`
      channels in g_a's last layer (small: the new latents start near zero).

  Returns:
    The widened parameter pytree (float32 numpy leaves).
  """
  m, m2 = config.num_latents, wide_config.num_latents
  if (wide_config.num_filters != config.num_filters
      or wide_config.factorized_filters != config.factorized_filters):
    raise ValueError(f'{wide_config.name} differs from {config.name} in more than M')
  if m2 <= m:
    raise ValueError(f'{wide_config.name} has M={m2}, not more than M={m}')
  if m % 2 or m2 % 2:
    raise ValueError('M must be even (h_s has 3M/2 hidden units)')
  old, fresh = _np(params), _np(init_params(wide_config, rng))
  h = m * 3 // 2
  # Layers that do not depend on M (g_a's and g_s's N-wide layers, h_a's later
  # layers, the z density and its medians) stay as trained.
  new = {transform: dict(layers) for transform, layers in old.items()}

  # g_a: old outputs as trained, new outputs fresh and small.
  layer = new['g_a']['conv3'] = fresh['g_a']['conv3']
  layer['kernel'] *= new_analysis_scale
  layer['bias'] *= new_analysis_scale
  layer['kernel'][..., :m] = old['g_a']['conv3']['kernel']
  layer['bias'][:m] = old['g_a']['conv3']['bias']

  # g_s and h_a read y: the new channels' weights are zero.
  for transform, name in (('g_s', 'deconv0'), ('h_a', 'conv0')):
    layer = new[transform][name] = fresh[transform][name]
    layer['kernel'][:, :, :m, :] = old[transform][name]['kernel']
    layer['kernel'][:, :, m:, :] = 0.0
    layer['bias'][:] = old[transform][name]['bias']

  # h_s: z -> M -> 3M/2 -> (scales M, means M); new units never feed old ones.
  layer = new['h_s']['deconv0'] = fresh['h_s']['deconv0']
  layer['kernel'][..., :m] = old['h_s']['deconv0']['kernel']
  layer['bias'][:m] = old['h_s']['deconv0']['bias']
  layer = new['h_s']['deconv1'] = fresh['h_s']['deconv1']
  layer['kernel'][:, :, :m, :h] = old['h_s']['deconv1']['kernel']
  layer['kernel'][:, :, m:, :h] = 0.0
  layer['bias'][:h] = old['h_s']['deconv1']['bias']
  layer = new['h_s']['conv2'] = fresh['h_s']['conv2']
  trained = old['h_s']['conv2']
  for half in (0, 1):  # scales, then means
    out, old_out = slice(half * m2, half * m2 + m), slice(half * m, half * m + m)
    layer['kernel'][:, :, :h, out] = trained['kernel'][..., old_out]
    layer['kernel'][:, :, h:, out] = 0.0
    layer['bias'][out] = trained['bias'][old_out]
  return new
