"""One-off (2026-12-04): fit h_a, h_s and the z density of migrated models to their fixed g_a,
on the rate of y and z alone. Kept as the record of how the shipped weights were made.
"""
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

from iac_jax.codec import image_codec, models, weight_grid
from iac_jax.codec.entropy_models import factorized, gaussian
from iac_jax.training import data

paths = data.find_images('/work/shared/data/train_images')[:-2]
photos = [data.load_rgb(p) for p in paths]
def scaled(im, s):
  if s == 1: return im
  h, w, _ = im.shape
  return np.asarray(Image.fromarray(im).resize((round(w*s), round(h*s)), Image.BICUBIC))

def y_maps(model):
  mod = model.module
  f = jax.jit(lambda p, x: mod.apply({'params': p}, x, method='analysis')[0])
  out = []
  for im in photos:
    for s in (1.0, 0.6):
      x = image_codec.pad_to_multiple(scaled(im, s))
      out.append(np.asarray(f(model.params, jnp.asarray(x[None], jnp.float32) / 255.)[0]))
  return out

def fit(model, steps, beta_unused=None, crop=16, batch=16, lr=1e-3):
  ys = [y for y in y_maps(model) if min(y.shape[:2]) >= crop]
  mod = model.module
  hyper = {k: model.params[k] for k in ('h_a', 'h_s', 'z_prior')}
  rest = {k: model.params[k] for k in ('g_a', 'g_s')}
  def loss_fn(hp, y, rng):
    p = {**rest, **hp}
    z = mod.apply({'params': p}, y, method=lambda m, y: m.h_a(y))
    z_hat = mod.apply({'params': p}, z, method='quantize_z')
    mu, sigma = mod.apply({'params': p}, z_hat, method='hyper_synthesis')
    r1, r2 = jax.random.split(rng)
    yb = gaussian.bits(y, mu, sigma, r1)
    zb = mod.apply({'params': p}, z, r2, method='z_bits')
    pixels = y.shape[0] * y.shape[1] * y.shape[2] * 256
    return (jnp.sum(yb) + jnp.sum(zb)) / pixels
  opt = optax.adam(optax.cosine_decay_schedule(lr, steps, 0.05))
  @jax.jit
  def step(hp, st, y, rng):
    l, g = jax.value_and_grad(loss_fn)(hp, y, rng)
    u, st = opt.update(g, st, hp)
    hp = optax.apply_updates(hp, u)
    hp = dict(hp, z_prior=factorized.with_fresh_medians(hp['z_prior']))
    return hp, st, l
  st = opt.init(hyper)
  rng = np.random.default_rng(0)
  t0 = time.time(); hist = []
  for i in range(steps):
    b = []
    for _ in range(batch):
      y = ys[rng.integers(len(ys))]
      t = rng.integers(0, y.shape[0] - crop + 1); l = rng.integers(0, y.shape[1] - crop + 1)
      b.append(y[t:t+crop, l:l+crop])
    hyper, st, loss = step(hyper, st, jnp.asarray(np.stack(b)), jax.random.PRNGKey(i))
    hist.append(float(loss))
    if (i + 1) % 250 == 0:
      print(model.name, i + 1, 'bpp(noisy)', np.mean(hist[-250:]), f'{time.time()-t0:.0f}s', flush=True)
  return {**model.params, **hyper}

for b in sys.argv[2:]:
  m = models.load_model(f'/work/main/iac_jax/weights/small-beta{b}.msgpack')
  p = fit(m, int(sys.argv[1]))
  meta = dict(m.metadata)
  meta['history'] = meta['history'] + [f'2026-12-04: h_a, h_s and the z density fitted for {sys.argv[1]} Adam steps (1e-3 cosine) to the fixed g_a on the rate of y and z alone (16x16 crops of y of the training photos at scales 1 and 0.6), /tmp/fit_hyper.py, recorded in NOTES.md']
  models.save_model(models.Model(m.name, m.config, weight_grid.half_precision(p), meta), f'/work/runs/fitted/small-beta{b}.msgpack')
