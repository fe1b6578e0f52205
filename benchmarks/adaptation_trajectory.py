"""Where does adaptation leave the model? The true RD cost along one adaptation run.

  .venv/bin/python benchmarks/adaptation_trajectory.py --steps=1000 --learning_rate=3e-5 \
      --decay_at=0 --snapshots=50,150,300,600,1000

Adapts the shipped model to the sample clip's I-frames (2 fps) and, at each snapshot
step, evaluates the adapted model on the whole padded I-frames as the decoder would
use it (rounded latents, the quantized update, no noise, no range coder): MSE(255), bpp
of the latents, PSNR and J = MSE + beta * bpp, plus the same with the adapted encoder
and the global decoder, and the last 20 training losses. With a constant learning
rate, the first n steps of a run are an n-step run (`finetuning.step_keys`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from iac_jax import demo
from iac_jax.adaptation import finetuning, update_coding
from iac_jax.codec import image_codec, models
from iac_jax.io import video

_MODEL = flags.DEFINE_string('model', models.DEFAULT_MODEL, 'Model name or path.')
_VIDEO = flags.DEFINE_string('video', demo.SAMPLE_VIDEO, 'Video file.')
_METHOD = flags.DEFINE_string('method', 'full', 'Adaptation method.')
_STEPS = flags.DEFINE_integer('steps', 600, 'Adaptation steps.')
_LR = flags.DEFINE_float('learning_rate', 1e-4, 'Adam step size.')
_DECAY_AT = flags.DEFINE_float('decay_at', 0.7, 'Rates drop to a tenth after this fraction.')
_FRAMES_PER_STEP = flags.DEFINE_integer('frames_per_step', 2, 'Crops per step.')
_SNAPSHOTS = flags.DEFINE_list('snapshots', ['300', '600'], 'Steps to evaluate at.')


def main(argv):
  del argv
  model = models.load_model(_MODEL.value)
  beta = models.default_beta(model)
  frames, _ = video.read_video(_VIDEO.value)  # the I-frames, 2 per second
  x = jnp.asarray(np.stack([image_codec.pad_to_multiple(f) for f in frames]), jnp.float32) / 255
  config = finetuning.config_for_effort(
      'fast', method=_METHOD.value, steps=_STEPS.value, learning_rate=_LR.value,
      decay_at=_DECAY_AT.value, frames_per_step=_FRAMES_PER_STEP.value, beta=beta)

  @jax.jit
  def evaluate(params):
    out = model.module.apply({'params': params}, x, training=False)
    mse = jnp.mean(jnp.square(jnp.clip(out['x_hat'], 0, 1) - x), axis=(1, 2, 3)) * 255.0**2
    bpp = (out['y_bits'] + out['z_bits']) / (x.shape[1] * x.shape[2])
    return jnp.mean(mse), jnp.mean(bpp), jnp.mean(10 * jnp.log10(255.0**2 / mse))

  def line(label, params, extra=''):
    mse, bpp, psnr = (float(v) for v in evaluate(params))
    print(f'{label:>10}: MSE {mse:6.2f}  bpp {bpp:.4f}  PSNR {psnr:.3f}  '
          f'J {mse + beta * bpp:7.2f}{extra}', flush=True)

  print(f'{model.name}, {len(frames)} I-frames of {frames.shape[2]}x{frames.shape[1]}, '
        f'{config.method} {config.steps} steps at {config.learning_rate:g}, '
        f'decay_at {config.decay_at:g}, {config.frames_per_step} crops per step', flush=True)
  line('global', model.params)

  def snapshot(step, result):
    phi = {**model.params, **result.encoder_params}
    adapted = phi
    if result.update_ints is not None:
      adapted = {**phi, **update_coding.apply_update(
          update_coding.decoder_side(model.params), result.update_ints, config.prior.t)}
    history = result.history
    mse, bpp, _ = (float(v) for v in evaluate(phi))
    extra = (f'  | encoder only: J {mse + beta * bpp:7.2f}'
             f'  | train loss (last 20) {np.mean(history["loss"][-20:]):.2f}'
             f'  update bits (surrogate) {np.mean(history["model_bits"][-20:]):.0f}')
    line(f'step {step}', adapted, extra)

  finetuning.adapt(model.params, x, jax.random.PRNGKey(0), config, model.config,
                   video_pixels=int(np.prod(frames.shape[:3])),
                   snapshot_at=tuple(int(s) for s in _SNAPSHOTS.value), on_snapshot=snapshot)


if __name__ == '__main__':
  app.run(main)
