"""The prepared run for the GPU minutes we get: everything we want to learn, in one command.

On a lent accelerator machine (Python 3.12, a current JAX, NumPy 2, no TensorFlow):

  PYTHONUNBUFFERED=1 python3 benchmarks/accelerator_run.py --out=$OUT --budget_s=540

then, back on the CPU machine, `benchmarks/accelerator_ingest.py` (README.md, "Running
on a GPU"). It imports no TensorFlow and runs from the source tree (no install).

Parts, in this order; each writes its result as soon as it is done (`results.json` is
rewritten atomically after every part, its files appear as they are finished), and a
part that raises is recorded with its traceback while the others go on:

  env         devices, versions, memory
  flips       scale indexes of `scale_index_flips.py` on this machine (flips.npz)
  adapt       one clip adapted with `full`: frames, encoder parameters, update
              integers, the latents' integers and the reconstruction (adapt.npz), for
              the CPU to range-code and decode bit-exactly
  scan        steps/s of the `lax.scan` adaptation path against per-step dispatch
  throughput  `adapt_many` for K videos per device on 1280x720 clips: videos/hour,
              ratio to K x one video, compiled and peak memory per video
  tests       the test suite's tests that need no range coder (tests.log)
  train       the global-model campaign on the time left (`iac_jax.training.campaign`), from
              the CPU campaign's branch that `make accelerator-pack` put in
              .accel/start_weights, else from the shipped weights of --train_config; the
              snapshot's weights come back on their 9-bit grids in weights.msgpack, stored
              as model files store them (the codec is defined on exactly those values)

`--smoke` shrinks every size to run on a CPU in a minute or two (`make accelerator-smoke`).
At most 8 files come back from the machine; this run writes at most 7.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import logging as std_logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]  # the package from the source tree, and scale_index_flips

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging
from flax import serialization

RESULTS = 'results.json'
# Tests whose modules never reach the range coder (TensorFlow); the rest need it.
CODER_FREE_TESTS = (
    'tests/codec/test_layers.py', 'tests/codec/test_quantization.py',
    'tests/adaptation/test_model_prior.py', 'tests/adaptation/test_finetuning.py',
    'tests/adaptation/test_batched.py', 'tests/training/test_trainer.py',
    'tests/evaluation/test_metrics.py', 'tests/codec/test_models.py',
    'tests/codec/test_entropy_models.py',
)
SMOKE_TESTS = ('tests/codec/test_quantization.py',)


@dataclasses.dataclass(frozen=True)
class Sizes:
  """Every size of the run; `SMOKE` is small enough for a CPU."""

  adapt_frames: int = 4
  adapt_steps: int = 100
  adapt_learning_rate: float = 1e-4
  adapt_size: tuple[int, int] = (320, 512)
  scan_steps: int = 50
  throughput_config: str = 'small'
  throughput_frames: int = 4
  throughput_size: tuple[int, int] = (720, 1280)
  throughput_steps: int = 20
  throughput_k: tuple[int, ...] = (1, 2, 4, 8, 16)
  throughput_budget_s: float = 180  # leaves the training part its share
  crop_size: int = 256
  flips_synthetic: int = 8
  train_batch: int = 8
  train_crop: int = 256
  train_decay_steps: int = 500
  train_max_steps: int = 0
  tests: tuple[str, ...] = CODER_FREE_TESTS
  tests_timeout_s: int = 150


SMOKE = Sizes(adapt_frames=2, adapt_steps=3, adapt_learning_rate=3e-3, adapt_size=(128, 192), scan_steps=2,
              throughput_config='tiny', throughput_frames=2, throughput_size=(64, 128),
              throughput_steps=2, throughput_k=(1, 2), crop_size=64, flips_synthetic=1,
              train_batch=2, train_crop=64, train_decay_steps=2, train_max_steps=3,
              tests=SMOKE_TESTS, tests_timeout_s=300)


class Run:
  """The output folder, the deadline and the results written so far."""

  def __init__(self, out: str, budget_s: float, sizes: Sizes, model_name: str,
               train_config: str, train_images: str, start_weights: str = ''):
    self.out, self.sizes, self.model_name = out, sizes, model_name
    self.train_config, self.train_images = train_config, train_images
    self.start_weights = start_weights
    self.start = time.time()
    self.deadline = self.start + budget_s
    self.results: dict = {'started': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                          'budget_s': budget_s, 'smoke': sizes == SMOKE, 'parts': {}}
    os.makedirs(out, exist_ok=True)

  def left(self) -> float:
    return self.deadline - time.time()

  def path(self, name: str) -> str:
    return os.path.join(self.out, name)

  def record(self, part: str, result: dict):
    self.results['parts'][part] = result
    write_json(self.path(RESULTS), self.results)


def write_json(path: str, record: dict):
  from iac_jax.io import atomic_io  # pylint: disable=g-import-not-at-top
  text = json.dumps(record, indent=1, sort_keys=True, default=_plain)
  atomic_io.write_bytes(path, text.encode())


def _plain(x):
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  return str(x)


def save_npz(path: str, **arrays):
  """np.savez_compressed to `path`, complete or not at all."""
  from iac_jax.io import atomic_io  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  np.savez_compressed(buffer, **arrays)
  atomic_io.write_bytes(path, buffer.getvalue())


def _memory() -> dict:
  try:
    stats = jax.local_devices()[0].memory_stats() or {}
  except Exception:  # noqa: BLE001 (backends without memory stats)
    stats = {}
  keys = ('bytes_in_use', 'peak_bytes_in_use', 'bytes_limit')
  return {k: int(stats[k]) for k in keys if k in stats}


def _versions() -> dict:
  out = {'python': platform.python_version()}
  for name in ('jax', 'jaxlib', 'flax', 'optax', 'orbax.checkpoint', 'numpy', 'scipy'):
    try:
      module = __import__(name, fromlist=['_'])
      out[name] = getattr(module, '__version__', '?')
    except ImportError:
      out[name] = None
  return out


# --- the parts -----------------------------------------------------------------------

def part_env(run: Run) -> dict:
  devices = jax.devices()
  return {'backend': jax.default_backend(), 'devices': [str(d) for d in devices],
          'device_kind': devices[0].device_kind, 'num_devices': len(devices),
          'host_cpus': os.cpu_count(), 'versions': _versions(), 'memory': _memory(),
          'platform': platform.platform()}


def part_flips(run: Run) -> dict:
  import scale_index_flips  # pylint: disable=g-import-not-at-top

  from iac_jax.codec import models  # pylint: disable=g-import-not-at-top
  saved = scale_index_flips.machine_indexes(models.load_model(run.model_name),
                                            synthetic=run.sizes.flips_synthetic)
  save_npz(run.path('flips.npz'), **saved)
  return {'file': 'flips.npz', 'inputs': (len(saved) - 1) // 3, 'model': run.model_name}


def adapt_clip(sizes: Sizes) -> np.ndarray:
  """uint8[T, H, W, 3]: a slow pan over the sample photo (a static scene, a moving
  camera), made without a video reader."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(os.path.join(ROOT, 'iac_jax', 'samples', 'rocket.png')) as im:
    photo = np.asarray(im.convert('RGB'))
  h, w = sizes.adapt_size
  if photo.shape[0] < h or photo.shape[1] < w + 8 * sizes.adapt_frames:
    raise ValueError(f'the sample photo {photo.shape} is too small for {sizes.adapt_size}')
  return np.stack([photo[:h, 8 * i:8 * i + w] for i in range(sizes.adapt_frames)])


def part_adapt(run: Run) -> dict:
  from iac_jax.adaptation import finetuning, update_coding, video_codec
  from iac_jax.codec import image_codec, models
  model = models.load_model(run.model_name)
  frames = adapt_clip(run.sizes)
  config = finetuning.AdaptationConfig(
      method='full', steps=run.sizes.adapt_steps, crop_size=run.sizes.crop_size,
      learning_rate=run.sizes.adapt_learning_rate, beta=models.default_beta(model))
  start = time.perf_counter()
  result = finetuning.adapt(model.params, video_codec.padded_input(frames),
                            jax.random.PRNGKey(0), config, model.config,
                            video_pixels=int(np.prod(frames.shape[:3])))
  adapt_s = time.perf_counter() - start
  theta = update_coding.apply_update(update_coding.decoder_side(model.params),
                                     result.update_ints, config.prior.t)
  encoder = jax.tree.map(np.asarray, result.encoder_params)
  adapted = models.Model(model.name, model.config, {**model.params, **encoder, **theta})
  arrays = {'frames': frames}
  for path, leaf in update_coding.sorted_leaves(encoder):
    arrays['encoder' + path] = np.asarray(leaf)
  for path, leaf in update_coding.sorted_leaves(result.update_ints):
    arrays['update' + path] = np.asarray(leaf)
  for i, frame in enumerate(frames):
    symbols = image_codec.frame_symbols(adapted, frame)
    arrays[f'z_int/{i}'] = symbols.z_int
    arrays[f'y_int/{i}'] = symbols.y_int
    arrays[f'reconstruction/{i}'] = symbols.reconstruction
  for k, v in result.history.items():
    arrays['history/' + k] = np.asarray(v)
  meta = {'model': model.name, 'fingerprint': model.fingerprint.hex(),
          'steps': config.steps, 'beta': config.beta, 'prior': dataclasses.asdict(config.prior),
          'learning_rate': config.learning_rate,
          'crop_size': config.crop_size, 'frames': list(frames.shape),
          'adapt_seconds': round(adapt_s, 2),
          'nonzero_update': int(sum(np.count_nonzero(v) for v in
                                    jax.tree.leaves(result.update_ints)))}
  arrays['meta'] = np.asarray(json.dumps(meta))
  save_npz(run.path('adapt.npz'), **arrays)
  return dict(meta, file='adapt.npz')


def _synthetic_videos(n: int, frames: int, size: tuple[int, int], seed: int = 0):
  rng = np.random.default_rng(seed)
  h, w = size
  yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
  out = []
  for _ in range(n):
    f = rng.uniform(2, 12, 3)
    base = np.stack([np.sin(f[0] * xx), np.cos(f[1] * yy), np.sin(f[2] * (xx + yy))], -1)
    clip = [np.clip(0.5 + 0.35 * np.roll(base, 4 * t, axis=1)
                    + rng.normal(0, 0.03, base.shape), 0, 1) for t in range(frames)]
    out.append(np.stack(clip).astype(np.float32))
  return out


def _pad64(videos):
  from iac_jax.codec import image_codec  # pylint: disable=g-import-not-at-top
  return [np.stack([image_codec.pad_to_multiple(f) for f in v]) for v in videos]


def part_scan(run: Run) -> dict:
  from iac_jax.adaptation import finetuning  # pylint: disable=g-import-not-at-top
  from iac_jax.codec import models  # pylint: disable=g-import-not-at-top
  model = models.load_model(run.model_name)
  s = run.sizes
  frames = jnp.asarray(_pad64(_synthetic_videos(1, s.throughput_frames,
                                                s.throughput_size))[0])
  config = finetuning.AdaptationConfig(method='full', steps=s.scan_steps,
                                       crop_size=s.crop_size)
  out = {'steps': s.scan_steps, 'frames': list(frames.shape), 'config': model.config.name}
  for name, per_call in (('dispatch', 1), ('scan', s.scan_steps)):
    times = []
    for _ in range(2):  # the first call compiles
      start = time.perf_counter()
      result = finetuning.adapt(model.params, frames, jax.random.PRNGKey(0), config,
                                model.config, steps_per_call=per_call)
      jax.block_until_ready(jax.tree.leaves(result.delta))
      times.append(time.perf_counter() - start)
    out[name] = {'first_s': round(times[0], 3), 'steps_per_s': round(s.scan_steps / times[1], 3)}
  out['scan_over_dispatch'] = round(out['scan']['steps_per_s'] / out['dispatch']['steps_per_s'], 3)
  return out


def part_throughput(run: Run) -> dict:
  from iac_jax.adaptation import batched, finetuning
  from iac_jax.codec import models
  s = run.sizes
  model = models.init_model(s.throughput_config)
  params = jax.tree.map(jnp.asarray, model.params)
  config = finetuning.AdaptationConfig(method='full', steps=s.throughput_steps,
                                       crop_size=s.crop_size)
  mesh = batched.video_mesh()
  devices = mesh.devices.size
  rows, base = [], None
  out = {'config': s.throughput_config, 'frames': s.throughput_frames,
         'size': list(s.throughput_size), 'steps': s.throughput_steps, 'devices': devices,
         'rows': rows}
  start = time.time()
  for k in s.throughput_k:
    spent = time.time() - start
    if rows and (run.left() < 3 * rows[-1]['seconds_with_compile']
                 or spent + 2 * rows[-1]['seconds_with_compile'] > s.throughput_budget_s):
      out['stopped'] = f'K={k} not run: {spent:.0f} s spent of the part\'s {s.throughput_budget_s} s'
      break
    n = k * devices
    videos = [jnp.asarray(v) for v in _pad64(_synthetic_videos(
        n, s.throughput_frames, s.throughput_size, seed=k))]
    keys = [jax.random.PRNGKey(i) for i in range(n)]

    def once(videos=videos, keys=keys, k=k):
      results = batched.adapt_many(params, videos, keys, config, model.config,
                                            mesh=mesh, videos_per_device=k)
      jax.block_until_ready(jax.tree.leaves(results[-1].delta))

    start = time.perf_counter()
    once()  # compile and warm up
    with_compile = time.perf_counter() - start
    start = time.perf_counter()
    once()
    seconds = time.perf_counter() - start
    per_hour = n * 3600 / seconds
    base = base or per_hour
    row = {'K': k, 'videos': n, 'seconds': round(seconds, 3),
           'seconds_with_compile': round(with_compile, 3),
           'videos_per_hour': round(per_hour, 1),
           'ratio_to_K_x_single': round(per_hour / (k * base), 3),
           'memory': _memory()}
    if k == s.throughput_k[0]:  # XLA's own count, once: each costs another compile
      row.update(_compiled_memory(params, videos[:k], config, model.config))
    rows.append(row)
    run.record('throughput', dict(out, partial=True))
  return out


def _compiled_memory(params, videos, config, model_config) -> dict:
  """XLA's own accounting of one compiled batch of `len(videos)` videos (one device)."""
  from iac_jax.adaptation import batched, finetuning
  from iac_jax.codec.hyperprior import DECODER_SIDE  # pylint: disable=g-import-not-at-top
  k = len(videos)
  carry = jax.tree.map(lambda x: jnp.stack([x] * k),
                       finetuning.initial_carry(params, config))
  keys = jnp.stack([finetuning.step_keys(jax.random.PRNGKey(i), config.steps) for i in range(k)])
  try:
    compiled = batched._run_many.lower(  # pylint: disable=protected-access
        carry, {n: params[n] for n in DECODER_SIDE}, jnp.stack(videos), keys,
        jnp.ones((k,), jnp.float32), model_config=model_config, config=config).compile()
    analysis = compiled.memory_analysis()
  except Exception as e:  # noqa: BLE001 (not every backend reports it)
    return {'compiled_memory_error': repr(e)[:200]}
  if analysis is None:
    return {}
  fields = ('temp_size_in_bytes', 'argument_size_in_bytes', 'output_size_in_bytes')
  out = {f: int(getattr(analysis, f, 0)) for f in fields}
  out['compiled_bytes_per_video'] = int(sum(out.values()) / k)
  return out


def part_tests(run: Run) -> dict:
  timeout = max(30, min(run.sizes.tests_timeout_s, int(run.left() - 60)))
  cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', *run.sizes.tests]
  if run.sizes != SMOKE and importlib.util.find_spec('xdist') is not None:
    cmd[4:4] = ['-n', '4']  # four test processes share the device
  env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE='false', PYTHONPATH=os.pathsep.join(
      [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
  start = time.time()
  with open(run.path('tests.log'), 'w') as log:
    try:
      proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            timeout=timeout, check=False)
      rc = proc.returncode
    except subprocess.TimeoutExpired:
      rc = 'timeout'
  with open(run.path('tests.log')) as f:
    lines = [ln.strip() for ln in f if ln.strip()]
  summary = next((ln for ln in reversed(lines) if ' in ' in ln and (
      'passed' in ln or 'failed' in ln or 'error' in ln)), lines[-1] if lines else '')
  return {'returncode': rc, 'summary': summary, 'seconds': round(time.time() - start, 1),
          'timeout_s': timeout, 'files': list(run.sizes.tests),
          'failed': [ln for ln in lines if ln.startswith(('FAILED', 'ERROR'))][:50]}


def _train_images(run: Run):
  from iac_jax.training import data  # pylint: disable=g-import-not-at-top
  if run.train_images and os.path.isdir(run.train_images):
    paths = data.find_images(run.train_images)
    if len(paths) > 2:
      images = [data.load_rgb(p) for p in paths]
      return ([os.path.basename(p) for p in paths[:-2]], images[:-2],
              {os.path.basename(p): im for p, im in zip(paths[-2:], images[-2:])})
  if run.sizes != SMOKE:
    raise FileNotFoundError(f'no training photos under {run.train_images!r} (make '
                            'accelerator-pack puts them in .accel/train_images)')
  clips = _synthetic_videos(1, 6, (96, 128))[0]
  images = [(c * 255).astype(np.uint8) for c in clips]
  return [f'synthetic{i}' for i in range(4)], images[:4], {'synthetic5': images[5]}


def part_train(run: Run) -> dict:
  from iac_jax.codec import models, weight_grid  # pylint: disable=g-import-not-at-top
  from iac_jax.training import campaign  # pylint: disable=g-import-not-at-top
  s = run.sizes
  names, images, held = _train_images(run)
  hours = max(run.left() - 45, 30) / 3600  # keep time to write the weights back
  cfg = campaign.CampaignConfig(
      config_name=run.train_config, hours=hours, max_steps=s.train_max_steps,
      decay_steps=s.train_decay_steps, batch_size=s.train_batch, crop_size=s.train_crop,
      eval_every=0)
  work = tempfile.mkdtemp(prefix='accel_train_')
  weights_dir = os.path.join(work, 'weights')
  os.makedirs(weights_dir)
  # The CPU campaign's branch where `make accelerator-pack` exported it, else the
  # shipped weights where there are some (random ones for the others).
  packed = run.start_weights and all(
      os.path.exists(os.path.join(run.start_weights, n + '.msgpack')) for n in cfg.names())
  source = run.start_weights if packed else models.WEIGHTS_DIR
  for name in cfg.names():
    for ext in ('.msgpack', '.json'):
      src = os.path.join(source, name + ext)
      if os.path.exists(src):
        shutil.copy(src, weights_dir)
  description = (f'{len(names)} photos ({", ".join(names[:3])}, ...), held out '
                 f'{", ".join(held)}; random {s.train_crop}x{s.train_crop} crops with flips '
                 'after random downscaling to 0.4-1x')
  start = time.time()
  trained = campaign.run(cfg, images, os.path.join(work, 'campaign'), weights_dir,
                         data_description=description, eval_images=held,
                         curve_path=run.path('curve.jsonl'))
  state = {m.name: m.params for m in trained}
  from iac_jax.io import atomic_io  # pylint: disable=g-import-not-at-top
  atomic_io.write_bytes(run.path('weights.msgpack'), serialization.msgpack_serialize(
      jax.tree.map(weight_grid.encode_leaf, state)))  # as model files store them
  return {'file': 'weights.msgpack', 'seconds': round(time.time() - start, 1),
          'started_from': 'the packed campaign branch' if packed else 'the shipped weights',
          'models': {m.name: m.metadata for m in trained},
          'fingerprints': {m.name: m.fingerprint.hex() for m in trained}}


PARTS: dict[str, Callable[[Run], dict]] = {
    'env': part_env, 'flips': part_flips, 'adapt': part_adapt, 'scan': part_scan,
    'throughput': part_throughput, 'tests': part_tests, 'train': part_train,
}
# Seconds a part needs at least to be worth starting (full sizes).
MIN_SECONDS = {'scan': 60, 'throughput': 90, 'tests': 60, 'train': 120}


def run_parts(run: Run, parts: dict[str, Callable[[Run], dict]]) -> dict:
  """Runs each part in order; one that raises is recorded and the next one starts."""
  for name, fn in parts.items():
    need = 0 if run.sizes == SMOKE else MIN_SECONDS.get(name, 0)
    if run.left() < need:
      run.record(name, {'skipped': f'{run.left():.0f} s left, needs {need}'})
      print(f'[{name}] skipped: not enough time left', flush=True)
      continue
    print(f'[{name}] start ({run.left():.0f} s left)', flush=True)
    start = time.time()
    try:
      result = fn(run)
      result['part_seconds'] = round(time.time() - start, 1)
      print(f'[{name}] done in {result["part_seconds"]} s', flush=True)
    except Exception as e:  # noqa: BLE001 (one part's failure must not stop the others)
      result = {'error': f'{type(e).__name__}: {e}', 'traceback': traceback.format_exc()[-4000:],
                'part_seconds': round(time.time() - start, 1)}
      print(f'[{name}] FAILED: {result["error"]}\n{result["traceback"]}', flush=True)
    run.record(name, result)
  run.results['finished'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
  run.results['seconds'] = round(time.time() - run.start, 1)
  write_json(run.path(RESULTS), run.results)
  return run.results


_OUT = flags.DEFINE_string('out', os.environ.get('OUT', 'accelerator_out'),
                           'Folder for the results (default: $OUT).')
_BUDGET = flags.DEFINE_float('budget_s', 540, 'Wall-clock budget of the whole run.')
_SMOKE = flags.DEFINE_bool('smoke', False, 'Tiny sizes: a check that runs on a CPU.')
_STRICT = flags.DEFINE_bool('strict', False, 'Exit 1 if a part failed (default: with '
                            '--smoke only; a real run returns what it has).')
_PARTS = flags.DEFINE_list('parts', list(PARTS), f'Parts to run, of {list(PARTS)}.')
_MODEL = flags.DEFINE_string('model', 'small-beta100', 'Shipped model of flips, adapt, scan.')
_TRAIN_CONFIG = flags.DEFINE_string('train_config', None, 'Config the train part '
                                    'continues, all four betas, from --start_weights or the '
                                    'shipped weights (default: small; tiny with --smoke).')
_START_WEIGHTS = flags.DEFINE_string(
    'start_weights', os.path.join(ROOT, '.accel', 'start_weights'), 'Models the train part '
    'continues (the CPU campaign\'s branch, written by make accelerator-pack); the shipped '
    'weights where this folder lacks one of them.')
_TRAIN_IMAGES = flags.DEFINE_string('train_images', os.path.join(ROOT, '.accel', 'train_images'),
                                    'Training photos; the last two (sorted) are held out.')


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)  # the library's progress lines
  std_logging.getLogger('absl').setLevel(std_logging.WARNING)  # not Orbax's chatter
  unknown = [p for p in _PARTS.value if p not in PARTS]
  if unknown:
    raise app.UsageError(f'unknown parts {unknown}; choose from {list(PARTS)}')
  run = Run(_OUT.value, _BUDGET.value, SMOKE if _SMOKE.value else Sizes(), _MODEL.value,
            _TRAIN_CONFIG.value or ('tiny' if _SMOKE.value else 'small'), _TRAIN_IMAGES.value,
            _START_WEIGHTS.value)
  results = run_parts(run, {p: PARTS[p] for p in _PARTS.value})
  failed = [p for p, r in results['parts'].items() if 'error' in r]
  print(f'accelerator run: {len(results["parts"])} parts in {results["seconds"]} s'
        + (f', failed: {failed}' if failed else ', none failed'), flush=True)
  if failed and (_STRICT.value if _STRICT.present else _SMOKE.value):
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
