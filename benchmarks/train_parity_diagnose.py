"""Where the rate of a model trained by train_parity.py goes, on its held-out photos.

For an iac_jax model file (the `ours` side leaves one in <workdir>/ours/models/): the
bytes of the container header and of the z and y sections, the estimates of z and y
from the rounded latents, and the PSNR of the decoded image next to the PSNR when g_s
is fed `y + u` (CompressAI's training input) instead of the rounded y. Compare the
z/y split with the CompressAI side's `z_bytes`/`y_bytes` in train_parity.json.

  .venv/bin/python benchmarks/train_parity_diagnose.py \\
      --model=/tmp/train_parity/ours/models/small-beta100.msgpack
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def downscale_long_side(image, long_side):
  """iac_jax's downscale (`iac_jax.io.image_io`): PIL bicubic to `long_side`."""
  from iac_jax.io.image_io import downscale_long_side as f  # pylint: disable=g-import-not-at-top
  return f(image, long_side)


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument('--model', required=True)
  p.add_argument('--images', default=os.path.join(HERE, '..', '..', 'shared', 'data',
                                                  'train_images'))
  p.add_argument('--holdout', type=int, default=2)
  p.add_argument('--long_side', type=int, default=512)
  p.add_argument('--json', default='', help='also write the rows here')
  args = p.parse_args(argv)

  import jax
  import jax.numpy as jnp

  from iac_jax.adaptation import decoding
  from iac_jax.codec import bitstream, image_codec, models
  from iac_jax.codec.hyperprior import MeanScaleHyperprior
  from iac_jax.evaluation import metrics
  from iac_jax.training import data
  model = models.load_model(args.model)
  module = MeanScaleHyperprior(model.config)
  rows = []
  for path in data.find_images(args.images)[-args.holdout:]:
    name = os.path.splitext(os.path.basename(path))[0]
    image = downscale_long_side(data.load_rgb(path), args.long_side)
    h, w, _ = image.shape
    pixels = h * w
    stream = image_codec.encode_image(model, image)
    _, sections = bitstream.unpack(stream)
    size = {s.tag.decode(): len(s.payload) for s in sections}
    x = jnp.asarray(image_codec.pad_to_multiple(image)[None], jnp.float32) / 255.0
    est = module.apply({'params': model.params}, x, training=False)
    decoded = decoding.decode(stream, model)[0]
    # g_s on y + u (u the training noise) instead of the rounded y.
    y, _ = module.apply({'params': model.params}, x, method='analysis')
    u = jax.random.uniform(jax.random.PRNGKey(0), y.shape, y.dtype, -0.5, 0.5)
    x_noisy = module.apply({'params': model.params}, y + u, method='synthesis')
    noisy = np.clip(np.round(np.asarray(x_noisy[0, :h, :w]) * 255), 0, 255).astype(np.uint8)
    row = {'image': name, 'width': w, 'height': h, 'bytes': len(stream),
           'header_bytes': len(stream) - size['Z'] - size['Y'],
           'z_bytes': size['Z'], 'y_bytes': size['Y'],
           'bpp_real': 8.0 * len(stream) / pixels,
           'z_bpp_real': 8.0 * size['Z'] / pixels, 'y_bpp_real': 8.0 * size['Y'] / pixels,
           'z_bpp_estimate': float(est['z_bits'][0]) / pixels,
           'y_bpp_estimate': float(est['y_bits'][0]) / pixels,
           'psnr_db': metrics.psnr_db(image, decoded),
           'psnr_db_gs_on_noisy_y': metrics.psnr_db(image, noisy)}
    rows.append(row)
    print(json.dumps(row), flush=True)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump({'model': args.model, 'rows': rows}, f, indent=1)


if __name__ == '__main__':
  main()
