"""Named model configurations of the mean-scale hyperprior.

`N` is the width of the hidden layers, `M` the number of latent channels of `y`
(Minnen et al. 2018). `paper` (N=128, M=192) is CompressAI's mbt2018-mean at its
qualities 1-4 and `paper-hi` (N=192, M=320) at qualities 5-8; `small` is the CPU
default and `tiny` exists so that tests run in seconds. `small-m192` and `small-m320`
are `small` with the latent width of `paper` and `paper-hi`, for the high rates,
where M may bound what the transforms can carry (a trained `small` model grows into
them with `training.latent_widening`).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Architecture of one mean-scale hyperprior.

  Attributes:
    name: registry name of this configuration.
    num_filters: N, channels of the hidden layers of all four transforms.
    num_latents: M, channels of the latent `y`.
    factorized_filters: hidden widths of the per-channel density MLP of `z`
      (CompressAI's EntropyBottleneck default).
  """

  name: str
  num_filters: int
  num_latents: int
  factorized_filters: tuple[int, ...] = (3, 3, 3, 3)

  @property
  def num_hyper_latents(self) -> int:
    """Channels of `z` (the hyper-analysis ends in N channels)."""
    return self.num_filters


CONFIGS: dict[str, ModelConfig] = {
    'paper': ModelConfig('paper', num_filters=128, num_latents=192),
    'paper-hi': ModelConfig('paper-hi', num_filters=192, num_latents=320),
    'small': ModelConfig('small', num_filters=64, num_latents=96),
    'small-m192': ModelConfig('small-m192', num_filters=64, num_latents=192),
    'small-m320': ModelConfig('small-m320', num_filters=64, num_latents=320),
    'tiny': ModelConfig('tiny', num_filters=8, num_latents=12),
}

# Images are padded to a multiple of this: g_a and h_a downsample by 2^6 in total.
PAD_MULTIPLE = 64


def get_config(name: str) -> ModelConfig:
  """Returns the configuration registered as `name`."""
  try:
    return CONFIGS[name]
  except KeyError:
    raise ValueError(
        f'unknown model config {name!r}; known: {sorted(CONFIGS)}') from None
