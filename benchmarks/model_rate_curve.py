"""R, D and the model rate M during `full` adaptation, every N steps.

  .venv/bin/python benchmarks/model_rate_curve.py --steps=600 --every=50

Adapts a model to a clip's I-frames and prints one line per reported step (the
metrics of that single step, so they are noisy). Used to check that M levels off.
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from iac_jax import demo
from iac_jax.adaptation import finetuning
from iac_jax.codec import image_codec, models
from iac_jax.io import video

_MODEL = flags.DEFINE_string('model', models.DEFAULT_MODEL, 'Model name or path.')
_VIDEO = flags.DEFINE_string('video', demo.SAMPLE_VIDEO, 'Video file.')
_STEPS = flags.DEFINE_integer('steps', 600, 'Adaptation steps.')
_EVERY = flags.DEFINE_integer('every', 50, 'Report every N steps.')
_LR = flags.DEFINE_float('learning_rate', 1e-4, 'Adam step size.')
_METHOD = flags.DEFINE_string('method', 'full', 'Adaptation method.')


def main(argv):
  del argv
  model = models.load_model(_MODEL.value)
  frames, _ = video.read_video(_VIDEO.value)
  x = jnp.asarray(np.stack([image_codec.pad_to_multiple(f) for f in frames]), jnp.float32) / 255.0
  config = finetuning.AdaptationConfig(
      method=_METHOD.value, steps=_STEPS.value, learning_rate=_LR.value,
      beta=models.default_beta(model), crop_size=256)
  start = time.perf_counter()

  def report(done, m):
    print(json.dumps({'step': done, 'seconds': round(time.perf_counter() - start, 1),
                      'bpp': round(m['bpp'], 4), 'mse_255': round(m['mse_255'], 2),
                      'model_kbit': round(m['model_bits'] / 1000, 1)}), flush=True)

  finetuning.adapt(model.params, x, jax.random.PRNGKey(0), config, model.config,
                   video_pixels=frames[..., 0].size, progress=report,
                   progress_every=_EVERY.value)


if __name__ == '__main__':
  app.run(main)
