"""Training parity: iac_jax's trainer vs CompressAI's MeanScaleHyperprior (mbt2018-mean).

Both sides train the same architecture from PyTorch's default initialization on the
same batches (iac_jax.training.data.CropStream, seed 0: the torch worker loads that very file),
with the same rate weight (beta = 1 / lambda), Adam at the same constant learning rate
and the same number of steps, then code the held-out photos (downscaled to a long side
of 512) into real bitstreams.

  ours:        iac_jax.training.trainer.train (loss beta * bpp + MSE(255), uniform noise for
               the rates, straight-through rounded y and z into g_s and h_s), then
               iac_jax.evaluation.image_rates.evaluate_image(real=True).
  compressai:  benchmarks/compressai_parity_worker.py in benchmarks/.compressai-venv
               (examples/train.py's loop: RateDistortionLoss, aux quantile loss with
               its own Adam), model.update(force=True), compress()/decompress().
  ours-noise-y, ours-noise-yz, ours-st (variants, this file's own loop around
               iac_jax's model, not the library trainer): g_s sees y + u (the same u
               as the rate, CompressAI's training forward), and for -yz h_s also sees
               z + u; ours-st is the library's forward in this loop (a check that the
               loop equals `train`).

Sides run one after the other; results (curves every 100 steps, held-out RD points,
wall times, provenance of the library files) are merged into
benchmarks/results/train_parity.json, so sides can also be run in separate calls.

  .venv/bin/python benchmarks/train_parity.py --steps=3000
  .venv/bin/python benchmarks/train_parity.py --steps=3000 --sides=ours-noise-y
"""

from __future__ import annotations

import argparse
import functools
import glob
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

VARIANTS = {'ours-st': ('st', 'st'), 'ours-noise-y': ('noise', 'st'),
            'ours-noise-yz': ('noise', 'noise')}


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--sides', default='ours,compressai',
                 help='comma list of: ours, compressai, ' + ', '.join(VARIANTS))
  p.add_argument('--steps', type=int, default=3000)
  p.add_argument('--config', default='small', help='iac_jax config (N, M)')
  p.add_argument('--beta', type=float, default=100.0, help='= 1 / lambda')
  p.add_argument('--learning_rate', type=float, default=1e-4)
  p.add_argument('--aux_learning_rate', type=float, default=1e-3)
  p.add_argument('--clip_max_norm', type=float, default=0.0,
                 help='CompressAI side only; 0 = none (iac_jax clips nothing)')
  p.add_argument('--batch_size', type=int, default=8)
  p.add_argument('--crop_size', type=int, default=128)
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--log_every', type=int, default=100)
  p.add_argument('--eval_every', type=int, default=1000)
  p.add_argument('--images', default=os.path.join(ROOT, '..', 'shared', 'data',
                                                  'train_images'))
  p.add_argument('--holdout', type=int, default=2, help='last N photos (sorted) held out')
  p.add_argument('--long_side', type=int, default=512)
  p.add_argument('--out', default=os.path.join(HERE, 'results', 'train_parity.json'))
  p.add_argument('--workdir', default=os.path.join(tempfile.gettempdir(), 'train_parity'))
  p.add_argument('--compressai_python',
                 default=os.path.join(HERE, '.compressai-venv', 'bin', 'python'))
  p.add_argument('--fresh', action='store_true', help='do not merge into an existing --out')
  p.add_argument('--threads', type=int, default=0,
                 help='threads per side (torch.set_num_threads; 1 also makes XLA '
                      'single-threaded); 0 = each library\'s default')
  p.add_argument('--parallel', action='store_true',
                 help='run the CompressAI worker concurrently with the iac_jax sides '
                      '(these run one after the other); use with --threads=1 on 2 cores')
  return p.parse_args(argv)


# --- shared ---------------------------------------------------------------------

def split_images(args):
  from iac_jax.training import data
  paths = data.find_images(args.images)
  if len(paths) <= args.holdout:
    raise SystemExit(f'need more than {args.holdout} photos in {args.images}')
  return paths[:-args.holdout], paths[-args.holdout:]


def downscale_long_side(image, long_side):
  """iac_jax's downscale (`iac_jax.io.image_io`): PIL bicubic to `long_side`."""
  from iac_jax.io.image_io import downscale_long_side as f  # pylint: disable=g-import-not-at-top
  return f(image, long_side)


def eval_images(args, held_out):
  from iac_jax.training import data
  return {os.path.splitext(os.path.basename(p))[0]:
          downscale_long_side(data.load_rgb(p), args.long_side) for p in held_out}


def checksum(batch: np.ndarray) -> dict:
  return {'crc32': zlib.crc32(np.ascontiguousarray(batch).tobytes()),
          'sum': float(np.sum(batch, dtype=np.float64))}


def provenance() -> dict:
  """What library code this run used (the library is edited while benchmarks run)."""
  files = sorted(glob.glob(os.path.join(ROOT, 'iac_jax', '**', '*.py'), recursive=True))
  h = hashlib.sha256()
  for f in files:
    with open(f, 'rb') as fh:
      h.update(os.path.relpath(f, ROOT).encode() + b'\0' + fh.read())
  git = lambda *a: subprocess.run(['git', '-C', ROOT, *a], check=False, capture_output=True,
                                  text=True).stdout.strip()
  return {'git_head': git('rev-parse', 'HEAD'),
          'dirty_library_files': [l[3:] for l in git('status', '--porcelain', '--',
                                                       'iac_jax').splitlines()],
          'iac_jax_sources_sha256': h.hexdigest()[:16]}


def payload_bits(model, image) -> dict:
  """Bytes of our stream split into header and payload (CompressAI counts no header)."""
  from iac_jax.codec import bitstream, image_codec
  data = image_codec.encode_image(model, image)
  _, sections = bitstream.unpack(data)
  payload = sum(len(s.payload) for s in sections)
  h, w, _ = image.shape
  return {'bytes': len(data), 'payload_bytes': payload,
          'bpp_payload': 8.0 * payload / (h * w)}


def evaluate_ours(model, images: dict, step: int) -> list[dict]:
  from iac_jax.evaluation import image_rates
  rows = []
  for name, image in images.items():
    t = time.perf_counter()
    r = image_rates.evaluate_image(model, image, real=True)
    r['code_seconds'] = time.perf_counter() - t
    rows.append({'step': step, 'image': name, **r, **payload_bits(model, image)})
  return rows


def summarize_curve(rows: list[dict]) -> list[dict]:
  keys = ('step', 'loss', 'bpp', 'y_bpp', 'z_bpp', 'mse_255', 'psnr_db', 'aux_loss',
          'loss_compressai')
  return [{k: r[k] for k in keys if k in r} for r in rows]


# --- ours: the library trainer -----------------------------------------------------

def run_ours(args, train_paths, images) -> dict:
  import jax

  from iac_jax.evaluation import image_rates
  from iac_jax.training import data, trainer
  logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s', force=True)
  workdir = os.path.join(args.workdir, 'ours')
  shutil.rmtree(workdir, ignore_errors=True)  # a checkpoint there would be resumed
  cfg = trainer.TrainConfig(
      config_name=args.config, betas=(args.beta,), steps=args.steps,
      batch_size=args.batch_size, crop_size=args.crop_size, min_scale=1.0,
      learning_rate=args.learning_rate, schedule='constant', seed=args.seed,
      log_every=args.log_every, save_every=args.steps, eval_every=args.eval_every)
  photos = data.load_images(train_paths)
  # Time the evaluations that `train` runs, to report training time without them.
  spent = {'eval_s': 0.0}
  real_evaluate = image_rates.evaluate_image

  def timed_evaluate(*a, **k):
    t = time.perf_counter()
    try:
      return real_evaluate(*a, **k)
    finally:
      spent['eval_s'] += time.perf_counter() - t

  image_rates.evaluate_image = timed_evaluate
  t0 = time.time()
  try:
    trained = trainer.train(cfg, photos, workdir, eval_images=images)
  finally:
    image_rates.evaluate_image = real_evaluate
  wall = time.time() - t0
  model = trained[0]
  def read(f):
    with open(os.path.join(workdir, f)) as fh:
      return [json.loads(line) for line in fh]
  curve = read('train_log.jsonl')
  log_path = os.path.join(workdir, 'eval_log.jsonl')
  evals = read('eval_log.jsonl') if os.path.exists(log_path) else []
  if any(r['step'] == args.steps for r in evals):
    # Payload bytes of the final streams (same model, same images as the last eval).
    for r in evals:
      if r['step'] == args.steps:
        r.update(payload_bits(model, images[r['image']]))
  else:  # eval_every=0: `train` evaluated nothing
    t = time.perf_counter()
    evals += evaluate_ours(model, images, args.steps)
    spent['eval_s'] += time.perf_counter() - t
    wall = time.time() - t0
  return {'curve': summarize_curve(curve), 'eval': evals, 'wall_s': wall,
          'eval_s': spent['eval_s'], 'train_s': wall - spent['eval_s'],
          'parameters': int(sum(np.size(x) for x in jax.tree.leaves(model.params))),
          'trainer': 'iac_jax.training.trainer.train'}


# --- ours: variants in this file's own loop ----------------------------------------

def variant_loss(params, module, x, rng, beta, *, y_input: str, z_input: str):
  """`rate_distortion` with the inputs of g_s (y_input) and h_s (z_input) either the
  library's straight-through rounding ('st') or the noisy latent of the rate ('noise',
  CompressAI's training forward). Noise and rates are the library's own: the same keys,
  the same draws."""
  import jax
  import jax.numpy as jnp

  from iac_jax.codec import quantization
  from iac_jax.codec.entropy_models import gaussian
  from iac_jax.codec.losses import psnr_db
  apply = lambda method, *a: module.apply({'params': params}, *a, method=method)
  y, z = apply('analysis', x)
  rng_y, rng_z = jax.random.split(rng)
  if z_input == 'st':
    z_tilde = apply('quantize_z', z)
  else:  # the same u that `z_bits(z, rng_z)` adds
    z_tilde = z + jax.random.uniform(rng_z, z.shape, z.dtype, -0.5, 0.5)
  mu, sigma = apply('hyper_synthesis', z_tilde)
  z_bits = apply('z_bits', z, rng_z)
  y_bits = gaussian.bits(y, mu, sigma, rng_y)
  if y_input == 'st':
    y_tilde = quantization.quantize(y, mu)
  else:  # the same u that `gaussian.bits(..., rng_y)` adds
    y_tilde = y + jax.random.uniform(rng_y, y.shape, y.dtype, -0.5, 0.5)
  x_hat = apply('synthesis', y_tilde)
  pixels = x.shape[0] * x.shape[1] * x.shape[2]
  y_bpp, z_bpp = jnp.sum(y_bits) / pixels, jnp.sum(z_bits) / pixels
  mse_255 = jnp.mean(jnp.square(x_hat - x)) * 255.0**2
  bpp = y_bpp + z_bpp
  loss = beta * bpp + mse_255
  return loss, {'loss': loss, 'bpp': bpp, 'y_bpp': y_bpp, 'z_bpp': z_bpp,
                'mse_255': mse_255, 'psnr_db': psnr_db(mse_255)}


def run_variant(args, side, train_paths, images) -> dict:
  import jax

  from iac_jax.codec import models
  from iac_jax.codec.configs import get_config
  from iac_jax.codec.entropy_models import factorized
  from iac_jax.codec.hyperprior import MeanScaleHyperprior, init_params
  from iac_jax.training import data, trainer
  y_input, z_input = VARIANTS[side]
  config = get_config(args.config)
  module = MeanScaleHyperprior(config)
  optimizer = trainer.make_optimizer()
  loss_fn = functools.partial(variant_loss, module=module, y_input=y_input, z_input=z_input)

  @jax.jit
  def step_fn(params, opt_state, batch, rng, lr):
    # trainer.single_step with the variant's loss.
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, x=batch, rng=rng, beta=args.beta)
    direction, opt_state = optimizer.update(grads, opt_state, params)
    params = jax.tree.map(lambda p, d: p - lr * d, params, direction)
    params = dict(params, z_prior=factorized.with_fresh_medians(params['z_prior']))
    return params, opt_state, metrics

  params = init_params(config, jax.random.PRNGKey(args.seed))  # as trainer.initial_state
  opt_state = optimizer.init(params)
  rng = jax.random.PRNGKey(args.seed)
  photos = data.load_images(train_paths)
  curve, evals, window, eval_s = [], [], [], 0.0
  t0 = time.time()
  with data.CropStream(photos, args.batch_size, args.crop_size, args.seed) as stream:
    for step, batch in zip(range(args.steps), stream):
      params, opt_state, metrics = step_fn(params, opt_state, batch,
                                           jax.random.fold_in(rng, step),
                                           np.float32(args.learning_rate))
      window.append(metrics)
      done = step + 1
      if done % args.log_every == 0 or done == args.steps:
        mean = {k: float(np.mean([np.asarray(m[k]) for m in window])) for k in window[0]}
        window = []
        curve.append({'step': done, **mean})
        print(f'{side} step {done}/{args.steps} {done / (time.time() - t0):.2f} steps/s '
              f'loss {mean["loss"]:.1f} bpp {mean["bpp"]:.4f} psnr {mean["psnr_db"]:.2f}',
              flush=True)
      if (args.eval_every and done % args.eval_every == 0) or done == args.steps:
        t = time.perf_counter()
        model = models.Model(f'{args.config}-{side}', config,
                             jax.tree.map(np.asarray, params), {'beta': args.beta})
        rows = evaluate_ours(model, images, done)
        evals += rows
        eval_s += time.perf_counter() - t
        for r in rows:
          print(f'{side} eval step {done} {r["image"]}: bpp {r["bpp_real"]:.4f} '
                f'psnr {r["psnr_db"]:.2f}', flush=True)
  wall = time.time() - t0
  return {'curve': curve, 'eval': evals, 'wall_s': wall, 'eval_s': eval_s,
          'train_s': wall - eval_s,
          'trainer': f'train_parity.py loop: g_s input {y_input}, h_s input {z_input}'}


# --- CompressAI -------------------------------------------------------------------

def run_compressai(args, train_paths, images, check_steps, done_callback=None):
  from iac_jax.codec.configs import get_config
  from iac_jax.training import data
  config = get_config(args.config)
  os.makedirs(args.workdir, exist_ok=True)
  npz = os.path.join(args.workdir, 'eval_images.npz')
  np.savez(npz, **images)
  req = {'N': config.num_filters, 'M': config.num_latents, 'images': train_paths,
         'data_py': data.__file__, 'steps': args.steps, 'batch': args.batch_size,
         'crop': args.crop_size, 'seed': args.seed, 'lmbda': 1.0 / args.beta,
         'lr': args.learning_rate, 'aux_lr': args.aux_learning_rate,
         'clip_max_norm': args.clip_max_norm, 'log_every': args.log_every,
         'eval_every': args.eval_every, 'eval_npz': npz, 'check_steps': check_steps,
         'torch_seed': args.seed}
  req['threads'] = args.threads
  worker = os.path.join(HERE, 'compressai_parity_worker.py')
  t0 = time.time()
  proc = subprocess.Popen([args.compressai_python, worker], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
  proc.stdin.write(json.dumps(req) + '\n')
  proc.stdin.close()
  if done_callback is not None:  # --parallel: read the worker on a thread
    thread = threading.Thread(target=lambda: done_callback(
        _read_compressai(args, proc, t0)), daemon=True)
    thread.start()
    return thread
  return _read_compressai(args, proc, t0)


def _read_compressai(args, proc, t0) -> dict:
  curve, evals, info = [], [], {}
  for line in proc.stdout:
    rec = json.loads(line)
    kind = rec.pop('type')
    if kind == 'log':
      curve.append(rec)
      print(f'compressai step {rec["step"]}/{args.steps} '
            f'{rec["step"] / rec["wall_s"]:.2f} steps/s loss {rec["loss"]:.1f} '
            f'bpp {rec["bpp"]:.4f} psnr {rec["psnr_db"]:.2f} aux {rec["aux_loss"]:.1f}',
            flush=True)
    elif kind == 'eval':
      evals.append(rec)
      print(f'compressai eval step {rec["step"]} {rec["image"]}: bpp {rec["bpp_real"]:.4f} '
            f'psnr {rec["psnr_db"]:.2f}', flush=True)
    else:
      info[kind] = rec
  if proc.wait() != 0:
    raise SystemExit(f'compressai worker failed ({proc.returncode})')
  wall = time.time() - t0
  eval_s = sum(r['code_seconds'] for r in evals)
  return {'curve': summarize_curve(curve), 'eval': evals, 'wall_s': wall,
          'train_s': info['done']['train_s'], 'eval_s': eval_s,
          'parameters': info['model']['parameters'],
          'batch_checksums': info['check']['checksums'], 'torch': info['check']['torch'],
          'torch_threads': info['check']['threads'],
          'trainer': 'compressai_parity_worker.py (examples/train.py loop)'}


# --- report ----------------------------------------------------------------------

def final_point(side: dict, steps: int) -> dict | None:
  rows = [r for r in side['eval'] if r['step'] == steps]
  if not rows:
    return None
  mean = lambda k: float(np.mean([r[k] for r in rows])) if all(k in r for r in rows) else None
  return {'bpp_real': mean('bpp_real'), 'bpp_payload': mean('bpp_payload'),
          'bpp_eval_estimate': mean('bpp_eval_estimate'), 'psnr_db': mean('psnr_db'),
          'images': {r['image']: {k: r.get(k) for k in ('bpp_real', 'bpp_payload',
                                                         'bpp_eval_estimate', 'psnr_db')}
                     for r in rows}}


def report(result: dict):
  sides = result['sides']
  names = [n for n in ('ours', 'compressai', *VARIANTS) if n in sides]
  steps = result['settings']['steps']
  print('\nTraining curves (means over the last 100 steps: loss = beta*bpp + MSE(255), '
        'bpp, PSNR dB)')
  print('step'.rjust(6) + ''.join(f' | {n:>26}' for n in names))
  by_step = {n: {r['step']: r for r in sides[n]['curve']} for n in names}
  all_steps = sorted(set().union(*[set(v) for v in by_step.values()]))
  for s in all_steps:
    cells = []
    for n in names:
      r = by_step[n].get(s)
      cells.append(f'{r["loss"]:8.1f} {r["bpp"]:.4f} {r["psnr_db"]:6.2f}' if r else ' ' * 26)
    print(f'{s:6d}' + ''.join(f' | {c:>26}' for c in cells))
  print('\nHeld-out RD points (real bitstreams; bpp_payload = ours without the container '
        'header)')
  for n in names:
    for r in sorted(sides[n]['eval'], key=lambda r: (r['step'], r['image'])):
      extra = f' payload {r["bpp_payload"]:.4f}' if 'bpp_payload' in r else ''
      print(f'{n:14s} step {r["step"]:5d} {r["image"]:22s} bpp {r["bpp_real"]:.4f}'
            f'{extra} (est {r["bpp_eval_estimate"]:.4f}) psnr {r["psnr_db"]:.2f}')
  print('\nWall time per side')
  for n in names:
    s = sides[n]
    last = s['curve'][-1]['step'] if s['curve'] else 0
    print(f'{n:14s} {s["wall_s"] / 60:6.1f} min total, {s["train_s"] / 60:6.1f} min '
          f'without evaluation ({last / s["train_s"]:.2f} steps/s), evaluation '
          f'{s["eval_s"]:.0f} s')
  if 'ours' in sides and 'compressai' in sides:
    a, b = final_point(sides['ours'], steps), final_point(sides['compressai'], steps)
    if a and b:
      d_psnr = a['psnr_db'] - b['psnr_db']
      d_rate = a['bpp_real'] / b['bpp_real'] - 1
      d_payload = a['bpp_payload'] / b['bpp_real'] - 1
      # Not behind: PSNR at most 0.3 dB lower, rate at most 3% higher.
      met = d_psnr >= -0.3 and d_rate <= 0.03
      result['goal'] = {'psnr_diff_db': d_psnr, 'rate_diff': d_rate,
                        'rate_diff_payload': d_payload, 'met': bool(met)}
      print(f'\nat step {steps}, mean of the held-out photos: ours {a["bpp_real"]:.4f} bpp '
            f'(payload {a["bpp_payload"]:.4f}) {a["psnr_db"]:.2f} dB; compressai '
            f'{b["bpp_real"]:.4f} bpp {b["psnr_db"]:.2f} dB')
      print(f'PSNR ours - compressai {d_psnr:+.2f} dB, rate ours / compressai - 1 '
            f'{100 * d_rate:+.1f}% (payload only {100 * d_payload:+.1f}%); goal '
            f'(PSNR within 0.3 dB at a rate within 3%): {"met" if met else "NOT met"}')


def main(argv=None):
  args = parse_args(argv)
  if args.threads == 1:  # before JAX is imported
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                               ' --xla_cpu_multi_thread_eigen=false'
                               ' intra_op_parallelism_threads=1').strip()
  sides = [s for s in args.sides.split(',') if s]
  unknown = set(sides) - {'ours', 'compressai', *VARIANTS}
  if unknown:
    raise SystemExit(f'unknown sides {sorted(unknown)}')
  from iac_jax.training import data
  train_paths, held_out = split_images(args)
  images = eval_images(args, held_out)
  check_steps = sorted({0, 1, args.steps - 1})
  stream = data.CropStream(data.load_images(train_paths), args.batch_size,
                           args.crop_size, args.seed, prefetch=1)
  stream.close()
  ours_checksums = {str(k): checksum(stream.batch(k)) for k in check_steps}
  del stream
  settings = {k: v for k, v in vars(args).items() if k not in ('sides', 'out', 'workdir', 'threads', 'parallel',
                                                              'fresh', 'compressai_python')}
  settings.update(train_images=len(train_paths),
                  held_out={k: list(v.shape) for k, v in images.items()})
  result = {'settings': settings, 'sides': {}}
  if os.path.exists(args.out) and not args.fresh:
    with open(args.out) as f:
      old = json.load(f)
    if old.get('settings') == settings:
      result['sides'] = old.get('sides', {})
    else:
      print(f'settings differ from {args.out}: starting a fresh result file')
  result['machine'] = {'cpus': os.cpu_count(), 'platform': platform.platform(),
                       'python': platform.python_version(),
                       'note': '2 cores shared with a nice-19 training run'}
  result['batch_checksums'] = ours_checksums
  lock = threading.Lock()

  def finish(side, r, start, prov):
    if side == 'compressai':
      if r['batch_checksums'] != ours_checksums:
        raise SystemExit(f'batches differ: {r["batch_checksums"]} vs {ours_checksums}')
      r['batches_equal_to_ours'] = True
    else:
      import jax
      r['jax'] = jax.__version__
      r['xla_flags'] = os.environ.get('XLA_FLAGS', '')
    r.update(started=start, provenance=prov, threads=args.threads,
             concurrent_with_other_side=bool(args.parallel and len(sides) > 1))
    with lock:
      result['sides'][side] = r
      os.makedirs(os.path.dirname(args.out), exist_ok=True)
      report(result)
      with open(args.out + '.tmp', 'w') as f:
        json.dump(result, f, indent=1)
      os.replace(args.out + '.tmp', args.out)

  background = None
  if args.parallel and 'compressai' in sides:
    print(f'=== compressai (in the background): {args.steps} steps', flush=True)
    start, prov = time.strftime('%Y-%m-%d %H:%M:%S'), provenance()
    background = run_compressai(args, train_paths, images, check_steps,
                                done_callback=lambda r: finish('compressai', r, start, prov))
    sides = [s for s in sides if s != 'compressai']
  for side in sides:
    print(f'=== {side}: {args.steps} steps', flush=True)
    start, prov = time.strftime('%Y-%m-%d %H:%M:%S'), provenance()
    if side == 'ours':
      r = run_ours(args, train_paths, images)
    elif side == 'compressai':
      r = run_compressai(args, train_paths, images, check_steps)
    else:
      r = run_variant(args, side, train_paths, images)
    finish(side, r, start, prov)
  if background is not None:
    background.join()
  print(f'wrote {args.out}')


if __name__ == '__main__':
  main()
