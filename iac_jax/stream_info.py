"""A JSON-ready description of a bitstream: header, and bits per section."""

from __future__ import annotations

import jax
import numpy as np

from iac_jax.codec import bitstream
from iac_jax.codec.configs import get_config


def describe(data: bytes) -> dict:
  """Version, model, shapes and the bytes of every section (and the update's static
  cost, for videos). Needs no model weights."""
  h, sections = bitstream.unpack(data, max_output_pixels=None)  # decodes no frames
  out = {'version': bitstream.VERSION,
         'kind': 'image' if h.kind == bitstream.KIND_IMAGE else 'video',
         'model': h.model_name, 'model_fingerprint': h.model_fingerprint.hex(),
         'config': h.config_name, 'frames': h.frames, 'height': h.height,
         'width': h.width, 'total_bytes': len(data),
         'bpp': 8 * len(data) / (h.frames * h.height * h.width),
         **bitstream.section_sizes(data, sections)}
  if h.kind == bitstream.KIND_VIDEO:
    if len(sections) != 1 + 2 * h.frames:
      raise bitstream.BitstreamError(f'expected {1 + 2 * h.frames} sections, '
                                     f'found {len(sections)}')
    out['fps'] = h.fps_num / h.fps_den
    update = sections[0].payload
    out['update_bits'] = 8 * len(update)
    out['update_static_bits'] = _static_bits(h.config_name, update) if update else 0.0
    out['frame_bits'] = [8 * (len(sections[1 + 2 * t].payload) +
                              len(sections[2 + 2 * t].payload)) for t in range(h.frames)]
  return out


def _zero_params(config_name: str) -> dict:
  from iac_jax.codec.hyperprior import init_params  # pylint: disable=g-import-not-at-top
  shapes = jax.eval_shape(lambda: init_params(get_config(config_name), jax.random.PRNGKey(0)))
  return jax.tree.map(lambda s: np.zeros(s.shape, np.float32), shapes)


def _static_bits(config_name: str, update_payload: bytes) -> float | None:
  from iac_jax.adaptation import update_coding  # pylint: disable=g-import-not-at-top
  try:
    params = _zero_params(config_name)
    prior = update_coding.read_prior(update_payload)
  except ValueError:  # unknown config, or a malformed prior (BitstreamError)
    return None
  return round(update_coding.static_bits(params, prior), 1)


def update_bits_by_tensor(data: bytes) -> list[dict]:
  """Bits of a video stream's parameter update per sent tensor (see
  `update_coding.bits_per_tensor`); decodes the update section, needs no weights.
  Empty for streams without an update (images, method `none` or `encoder`)."""
  from iac_jax.adaptation import update_coding  # pylint: disable=g-import-not-at-top
  h, sections = bitstream.unpack(data, max_output_pixels=None)
  if h.kind != bitstream.KIND_VIDEO or not sections or not sections[0].payload:
    return []
  try:
    template = update_coding.decoder_side(_zero_params(h.config_name))
  except ValueError as e:
    raise bitstream.BitstreamError(f'unknown model configuration: {e}') from None
  ints, prior = update_coding.decode_update(sections[0].payload, template)
  return update_coding.bits_per_tensor(ints, prior)
