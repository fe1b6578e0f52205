"""Decoding every iac-jax stream, the receiver's side of the method.

An image stream is a header and the image's 'Z' and 'Y' sections, decoded by the
image codec alone. A video stream starts with the update section ('U'): the receiver
first rebuilds the adapted decoder `theta_global + t k` from it (`update_coding`), then
decodes each frame with it. This module sits above `iac_jax.codec` because of that
update section, so that the image codec never imports the method built on it.
"""

from __future__ import annotations

import numpy as np

from iac_jax.adaptation import update_coding
from iac_jax.codec import bitstream, image_codec
from iac_jax.codec.bitstream import BitstreamError
from iac_jax.codec.models import Model


def decode(data: bytes, model: Model | None = None,
           max_output_pixels: int = bitstream.MAX_OUTPUT_PIXELS) -> np.ndarray:
  """Decodes a bitstream to uint8[T, H, W, 3]; raises BitstreamError if malformed.

  Images and videos alike; for a video the adapted decoder is rebuilt from the
  update section before any frame is decoded. A stream declaring more than
  `max_output_pixels` pixels (T H W) is refused before anything is allocated.
  """
  header, sections = bitstream.unpack(data, max_output_pixels)
  first = 0
  if header.kind == bitstream.KIND_VIDEO:
    first = 1
    if not sections or sections[0].tag != image_codec.TAG_UPDATE:
      raise BitstreamError('a video stream starts with its update section')
  if len(sections) != first + 2 * header.frames:
    raise BitstreamError(f'expected {first + 2 * header.frames} sections, '
                         f'found {len(sections)}')
  model = image_codec.model_for(header, model)
  if first:
    model = _apply_update_section(model, sections[0].payload)
  frames = [image_codec.decode_frame(model, sections[first + 2 * t],
                                     sections[first + 2 * t + 1], header.height, header.width)
            for t in range(header.frames)]
  return np.stack(frames)


def _apply_update_section(model: Model, payload: bytes) -> Model:
  """The model the receiver rebuilds: theta_global + t k, or the global one if empty."""
  if not payload:
    return model
  theta_global = update_coding.decoder_side(model.params)
  ints, prior = update_coding.decode_update(payload, theta_global)
  theta = update_coding.apply_update(theta_global, ints, prior.t)
  return Model(model.name, model.config, {**model.params, **theta}, model.metadata)
