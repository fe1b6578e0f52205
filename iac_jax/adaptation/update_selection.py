"""Which parts of the decoder-side update are sent: fixed subsets, or chosen by RD.

`SUBSETS` names fixed sets of decoder-side parameters that adaptation may move
(`AdaptationConfig.update_groups`); the rest stay at the global model's values and
are sent as zeros. `choose` decides after adaptation, by rate-distortion:

The quantized update `k` is grouped by layer (each layer of g_s and h_s, and the z
density as one group). A group left out is sent as zeros, which the spike-and-slab
prior makes nearly free (its static cost, a few thousandths of a bit per parameter),
so the bitstream format does not change and the decoder needs to know nothing.

The choice minimizes the RD cost the paper's objective measures, on the video's own
I-frames with rounded latents (what the coder sends):

  J(S) = D(S) + beta * (R(S) + M(S)) / pixels

D the MSE (255 scale), R the estimated bits of the latents, M the exact code length
of the update with only the groups in S. With G groups it evaluates J for all groups,
for all but one group (G times) and for none; it keeps every group whose removal does
not lower J, then returns the best of that set, all groups and none. So the update
sent never costs more than it saves on these frames: `J(chosen) <= J(none)`.

One more candidate, `global`: the global model's own encoder with no update section
at all. The adapted encoder can be worse than the one it started from (a learning
rate too large for a well-trained model); then the stream is coded with the global
encoder, so adaptation never costs more than it saves: `J(chosen) <= J(global)`.
Without an update (`ints=None`, encoder-only adaptation) the choice is between the
adapted and the global encoder alone.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from iac_jax.adaptation import update_coding
from iac_jax.adaptation.model_prior import ModelPrior
from iac_jax.codec.configs import ModelConfig
from iac_jax.codec.hyperprior import MeanScaleHyperprior


def _is_bias_or_gdn(path: str) -> bool:
  return "['bias']" in path or "['igdn" in path


# Decoder-side parameters delta may move, by name: a predicate on the leaf's keystr
# within the decoder-side tree ("['g_s']['deconv0']['kernel']").
SUBSETS = {
    'all': lambda path: True,
    'synthesis': lambda path: path.startswith("['g_s']"),
    'biases-gdn': lambda path: path.startswith(("['g_s']", "['h_s']")) and _is_bias_or_gdn(path),
    'synthesis-biases-gdn': lambda path: path.startswith("['g_s']") and _is_bias_or_gdn(path),
    'hyper': lambda path: not path.startswith("['g_s']"),
}


def subset_predicate(name: str):
  """`SUBSETS[name]`, or ValueError naming the subsets there are."""
  if name not in SUBSETS:
    raise ValueError(f'unknown update_groups {name!r}; choose from {tuple(SUBSETS)}')
  return SUBSETS[name]


def group_of(path: str) -> str:
  """'['g_s']['deconv0']['kernel']' -> 'g_s/deconv0'; the z density is one group."""
  parts = [p.strip("'\"") for p in path.strip('[]').split('][')]
  return parts[0] if parts[0] == 'z_prior' else '/'.join(parts[:2])


def groups(ints: Any) -> list[str]:
  """The groups of an update tree, in coding order."""
  return list(dict.fromkeys(group_of(p) for p, _ in update_coding.sorted_leaves(ints)))


def keep_only(ints: Any, kept: set[str]) -> Any:
  """`ints` with every group not in `kept` set to zero."""
  pairs, treedef = jax.tree_util.tree_flatten_with_path(ints)
  leaves = [np.asarray(v) if group_of(jax.tree_util.keystr(p)) in kept
            else np.zeros_like(np.asarray(v)) for p, v in pairs]
  return jax.tree_util.tree_unflatten(treedef, leaves)


@functools.partial(jax.jit, static_argnums=0)
def _frame_cost(config: ModelConfig, params: dict, x: jax.Array):
  out = MeanScaleHyperprior(config).apply({'params': params}, x, training=False)
  sse = jnp.sum(jnp.square(out['x_hat'] - x)) * 255.0**2
  return jnp.sum(out['y_bits']) + jnp.sum(out['z_bits']), sse


@dataclasses.dataclass(frozen=True)
class Choice:
  """The groups sent and what each candidate set cost (J, per-pixel terms)."""

  ints: Any
  sent: tuple[str, ...]
  dropped: tuple[str, ...]
  costs: dict
  global_encoder: bool = False  # code with the global model's g_a, h_a


def rd_cost(params: dict, theta_global: dict, ints: Any, prior: ModelPrior, frames: jax.Array,
            model_config: ModelConfig, beta: float, video_pixels: int) -> dict:
  """J and its terms for the update `ints` on padded frames float32[T, H, W, 3].

  Bits and squared errors are summed over the padded frames (as the coder pays for
  them) and divided by the unpadded `video_pixels`.
  """
  theta = theta_global if ints is None else update_coding.apply_update(
      theta_global, ints, prior.t)
  full = {**params, **theta}
  bits = sse = 0.0
  for i in range(frames.shape[0]):
    b, e = _frame_cost(model_config, full, frames[i:i + 1])
    bits, sse = bits + float(b), sse + float(e)
  padded_pixels = frames.shape[0] * frames.shape[1] * frames.shape[2]
  model_bits = 0 if ints is None else sum(
      t['bits'] for t in update_coding.bits_per_tensor(ints, prior))
  mse = sse / (3 * padded_pixels)
  bpp, model_bpp = bits / video_pixels, model_bits / video_pixels
  return {'J': mse + beta * (bpp + model_bpp), 'mse_255': mse, 'bpp': bpp,
          'model_bpp': model_bpp}


def choose(params: dict, encoder_params: dict, ints: Any, prior: ModelPrior,
           frames: jax.Array, model_config: ModelConfig, beta: float,
           video_pixels: int) -> Choice:
  """The subset of the update's groups to send (see the module docstring).

  params: the global model; encoder_params: the adapted g_a, h_a; ints: the full
  quantized update, or None where none is sent; frames: the padded I-frames the cost
  is measured on.
  """
  theta_global = update_coding.decoder_side(params)
  base = {**params, **jax.tree.map(np.asarray, encoder_params)}
  def cost(encoder_side, ints):
    return rd_cost(encoder_side, theta_global, ints, prior, frames, model_config, beta,
                   video_pixels)
  zeros = None if ints is None else keep_only(ints, set())
  costs = {'none': cost(base, zeros), 'global': cost(params, None)}
  if ints is None:
    use_global = costs['global']['J'] < costs['none']['J']
    return Choice(ints=None, sent=(), dropped=(), costs=costs, global_encoder=use_global)
  adapted = functools.partial(cost, base)  # with the adapted encoder, by update
  names = groups(ints)
  costs['all'] = adapted(ints)
  harmful = set()
  for g in names:
    costs['all but ' + g] = adapted(keep_only(ints, set(names) - {g}))
    if costs['all but ' + g]['J'] < costs['all']['J']:
      harmful.add(g)
  candidates = {'all': set(names), 'none': set()}
  if harmful and len(harmful) < len(names):
    kept = set(names) - harmful
    costs['chosen'] = adapted(keep_only(ints, kept))
    candidates['chosen'] = kept
  candidates['global'] = set()
  best = min(candidates, key=lambda k: costs[k]['J'])
  kept = candidates[best]
  if best == 'global':
    return Choice(ints=None, sent=(), dropped=tuple(names), costs=costs, global_encoder=True)
  return Choice(ints=keep_only(ints, kept), sent=tuple(g for g in names if g in kept),
                dropped=tuple(g for g in names if g not in kept), costs=costs)
