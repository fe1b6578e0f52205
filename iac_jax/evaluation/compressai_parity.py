"""How closely an imported model reproduces CompressAI's outputs on the same image.

`reference` is what benchmarks/make_compressai_fixture.py writes (CompressAI's side,
NCHW): `image` uint8[H, W, 3] (H, W multiples of 64), `y`, `z`, `x_hat` of its
eval-mode forward pass, `y_likelihoods`, `z_likelihoods`, `y_bytes`, `z_bytes` of
`compress()`, and `decoded`, uint8 `decompress()`. Ours: the same forward pass
(`MeanScaleHyperprior.apply(..., training=False)` and its `analysis`), and a real
bitstream (`image_codec.encode_image`, then `decoding.decode`).

Estimated bits of `y` are compared under the continuous sigma (as CompressAI's
likelihoods are); our coder codes `y` under the nearest table scale (log domain), where
CompressAI's takes the smallest table scale >= sigma, so the coded bytes differ a little.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np

from iac_jax.adaptation import decoding
from iac_jax.codec import image_codec
from iac_jax.codec.entropy_models import gaussian
from iac_jax.codec.models import Model
from iac_jax.evaluation.metrics import psnr_db


def _nchw(a) -> np.ndarray:
  return np.asarray(a, np.float32).transpose(0, 3, 1, 2)


def _relative(ours: float, theirs: float) -> float:
  return (ours - theirs) / theirs


def compare(model: Model, reference: Mapping[str, np.ndarray]) -> dict:
  """Differences of our forward pass, rates and bitstream from CompressAI's, as a dict
  of plain floats (max abs errors, relative differences, bytes, dB)."""
  image = np.asarray(reference['image'])
  x = jnp.asarray(image[None], jnp.float32) / 255.0
  module, variables = model.module, {'params': model.params}
  y, z = module.apply(variables, x, method='analysis')
  out = module.apply(variables, x, training=False)
  mu, sigma = module.apply(variables, module.apply(variables, z, method='quantize_z'),
                           method='hyper_synthesis')
  y_bits = float(-jnp.sum(jnp.log2(gaussian.likelihood(jnp.round(y - mu), sigma))))
  ref_y_bits = float(-np.sum(np.log2(reference['y_likelihoods'].astype(np.float64))))
  ref_z_bits = float(-np.sum(np.log2(reference['z_likelihoods'].astype(np.float64))))
  z_bits = float(out['z_bits'][0])

  sections, reconstruction = image_codec.encode_frame(model, image)
  data = image_codec.encode_image(model, image)
  decoded = decoding.decode(data, model)[0]
  ref_bytes = int(reference['y_bytes']) + int(reference['z_bytes'])
  payload = sum(len(s.payload) for s in sections)
  ref_psnr = psnr_db(image, reference['decoded'])
  ours_psnr = psnr_db(image, decoded)
  return {
      'height': int(image.shape[0]), 'width': int(image.shape[1]),
      'y_max_abs_err': float(np.max(np.abs(_nchw(y) - reference['y']))),
      'y_max_abs': float(np.max(np.abs(reference['y']))),
      'z_max_abs_err': float(np.max(np.abs(_nchw(z) - reference['z']))),
      'z_max_abs': float(np.max(np.abs(reference['z']))),
      'x_hat_max_abs_err': float(np.max(np.abs(_nchw(out['x_hat']) - reference['x_hat']))),
      'y_bits': y_bits, 'y_bits_compressai': ref_y_bits,
      'y_bits_rel': _relative(y_bits, ref_y_bits),
      'y_bits_table_scales': float(out['y_bits'][0]),
      'z_bits': z_bits, 'z_bits_compressai': ref_z_bits,
      'z_bits_rel': _relative(z_bits, ref_z_bits),
      'payload_bytes': payload, 'y_bytes': len(sections[1].payload),
      'z_bytes': len(sections[0].payload), 'stream_bytes': len(data),
      'bytes_compressai': ref_bytes, 'y_bytes_compressai': int(reference['y_bytes']),
      'z_bytes_compressai': int(reference['z_bytes']),
      'payload_bytes_rel': _relative(payload, ref_bytes),
      'psnr_db': ours_psnr, 'psnr_db_compressai': ref_psnr,
      'psnr_db_diff': ours_psnr - ref_psnr,
      'decoded_is_reconstruction': bool(np.array_equal(decoded, reconstruction)),
      'decoded_max_abs_diff_compressai': int(np.max(np.abs(
          decoded.astype(np.int16) - reference['decoded'].astype(np.int16)))),
  }
