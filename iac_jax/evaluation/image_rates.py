"""Rates of one image three ways: training estimate, evaluation estimate, real bytes.

The training estimate uses uniform noise (what the loss sees), the evaluation
estimate rounds (what the coder is given), and the real rate is the bitstream's
size. A large gap between the first two means the model learnt to exploit the noise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from iac_jax.adaptation import decoding
from iac_jax.codec import image_codec
from iac_jax.codec.hyperprior import MeanScaleHyperprior
from iac_jax.codec.models import Model
from iac_jax.evaluation import metrics


def evaluate_image(model: Model, image: np.ndarray, seed: int = 0, real: bool = True) -> dict:
  """bpp (train estimate, eval estimate, real bitstream) and PSNR of uint8[H, W, 3].

  With `real=False` (no range coder installed, e.g. on an accelerator machine) the
  real rate is left out and PSNR is that of the rounded latents, which equals the
  decoded image's up to float reassociation.
  """
  image = image_codec.as_rgb_uint8(image)
  h, w, _ = image.shape
  x = jnp.asarray(image_codec.pad_to_multiple(image)[None], jnp.float32) / 255.0
  module = MeanScaleHyperprior(model.config)
  crop = lambda b: float(b[0])  # bits over the padded frame, charged to the real pixels
  train = module.apply({'params': model.params}, x, jax.random.PRNGKey(seed), training=True)
  evaluation = module.apply({'params': model.params}, x, training=False)
  pixels = h * w
  result = {
      'width': w, 'height': h,
      'bpp_train_estimate': (crop(train['y_bits']) + crop(train['z_bits'])) / pixels,
      'bpp_eval_estimate': (crop(evaluation['y_bits']) + crop(evaluation['z_bits'])) / pixels,
  }
  if real:
    data = image_codec.encode_image(model, image)
    decoded = decoding.decode(data, model)[0]
    result['bpp_real'] = metrics.bpp(len(data), pixels)
  else:
    x_hat = np.asarray(evaluation['x_hat'][0, :h, :w])
    decoded = np.clip(np.round(x_hat * 255.0), 0, 255).astype(np.uint8)
  result['psnr_db'] = metrics.psnr_db(image, decoded)
  return result


def mean_point(model: Model, images: list[np.ndarray], beta: float) -> dict:
  """The mean real bpp and PSNR of `images`, and the loss `beta * bpp + MSE(255)` of
  those means: one RD point per model, as the campaign's held-out photos are read."""
  rows = [evaluate_image(model, image) for image in images]
  bpp = float(np.mean([r['bpp_real'] for r in rows]))
  psnr = float(np.mean([r['psnr_db'] for r in rows]))
  return {'bpp': round(bpp, 4), 'psnr_db': round(psnr, 2),
          'loss': round(beta * bpp + 255.0**2 * 10**(-psnr / 10), 2)}
