import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from iac_jax.codec import range_coding
from iac_jax.codec.configs import get_config
from iac_jax.codec.hyperprior import MeanScaleHyperprior, init_params
from iac_jax.optim import nonfinite_steps
from iac_jax.training import data, trainer
from tests.conftest import smooth_image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _images():
  return [smooth_image(96, 96, seed=s) for s in range(4)]


def _read_jsonl(path):
  return [json.loads(line) for line in path.read_text().splitlines()]


def test_crop_stream_yields_batches_in_range():
  images = [smooth_image(50, 40), smooth_image(200, 300, seed=1)]
  with data.CropStream(images, batch_size=3, crop_size=64, seed=0) as stream:
    batch = next(iter(stream))
  assert batch.shape == (3, 64, 64, 3) and batch.dtype == np.float32
  assert 0.0 <= batch.min() and batch.max() <= 1.0


def test_the_held_out_photos_are_the_last_sorted_ones_downscaled(tmp_path):
  for i, (h, w) in enumerate([(40, 30), (700, 500), (64, 64), (300, 1024)]):
    Image.fromarray(smooth_image(h, w, seed=i)).save(tmp_path / f'p{i}.png')
  train, held = data.held_out_split(str(tmp_path))
  assert [os.path.basename(p) for p in train] == ['p0.png', 'p1.png']
  assert [os.path.basename(p) for p in held] == ['p2.png', 'p3.png']
  images, photos = data.load_split(str(tmp_path), long_side=512)
  assert [a.shape for a in images] == [(40, 30, 3), (700, 500, 3)]
  assert [a.shape for a in photos] == [(64, 64, 3), (150, 512, 3)]
  with pytest.raises(ValueError, match='found 4 images'):
    data.held_out_split(str(tmp_path), holdout=4)


def test_crop_stream_batches_depend_only_on_seed_and_step():
  images = _images()
  with data.CropStream(images, 2, 64, seed=3) as stream:
    batches = [b for _, b in zip(range(3), stream)]
  with data.CropStream(images, 2, 64, seed=3, start_step=2) as resumed:
    np.testing.assert_array_equal(next(iter(resumed)), batches[2])
  with data.CropStream(images, 2, 64, seed=4) as other:
    assert not np.array_equal(next(iter(other)), batches[0])


def test_scale_augmentation_windows_stay_inside_the_photo():
  rng = np.random.default_rng(0)
  sides = set()
  for h, w in [(300, 451), (1280, 800), (129, 4000), (500, 500)]:
    for _ in range(200):
      top, left, side = data.scaled_window(h, w, 128, 0.4, rng)
      assert 0 <= top and top + side <= h and 0 <= left and left + side <= w
      assert 128 <= side <= min(128 / 0.4 + 1, h, w)
      sides.add(side)
  assert len(sides) > 50  # the scale really varies


def test_scale_augmentation_downscales_and_is_deterministic_per_seed_and_step():
  # Stripes of period 4: a crop downscaled by 2 or more blurs them to near grey.
  stripes = np.zeros((600, 600, 3), np.uint8)
  stripes[:, ::4] = stripes[:, 1::4] = 255
  images = [stripes]
  with data.CropStream(images, 6, 64, seed=1, min_scale=0.25) as stream:
    first = [b for _, b in zip(range(3), stream)]
  again = data.CropStream(images, 6, 64, seed=1, min_scale=0.25)
  again.close()
  for step in range(3):
    np.testing.assert_array_equal(again.batch(step), first[step])
  other = data.CropStream(images, 6, 64, seed=2, min_scale=0.25)
  other.close()
  assert not np.array_equal(other.batch(0), first[0])
  contrast = np.concatenate([b.std(axis=(1, 2, 3)) for b in first])
  assert contrast.min() < 0.1 and contrast.max() > 0.35  # some downscaled, some not
  plain = data.CropStream(images, 6, 64, seed=1)
  plain.close()
  assert plain.batch(0).std(axis=(1, 2, 3)).min() > 0.45  # no augmentation: crisp


@pytest.mark.parametrize('per_model', trainer.PER_MODEL)
def test_multi_beta_step_equals_single_beta_steps(per_model):
  cfg = trainer.TrainConfig(config_name='tiny', betas=(3.0, 300.0), steps=10,
                             learning_rate=1e-2, final_learning_rate=1e-3)
  module = MeanScaleHyperprior(get_config('tiny'))
  optimizer = trainer.make_optimizer(cfg)
  state = trainer.initial_state(cfg, optimizer)
  batch = np.stack([smooth_image(64, 64, seed=s) for s in range(2)]).astype(np.float32) / 255
  rng = jax.random.PRNGKey(1)
  lr = trainer.learning_rate_at(cfg, 0)
  state, metrics = trainer.train_step(state, batch, rng, np.asarray(cfg.betas, np.float32),
                                       lr, model=module, optimizer=optimizer,
                                       per_model=per_model)
  init = init_params(get_config('tiny'), jax.random.PRNGKey(cfg.seed))
  for i, beta in enumerate(cfg.betas):
    params, _, single = trainer.single_step(init, optimizer.init(init), batch, rng,
                                             np.float32(beta), np.float32(lr),
                                             model=module, optimizer=optimizer)
    # lr 1e-2: 0.1% of a step. jax.tree.map also fails on a differing structure.
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-5),
                 trainer.unstack(state['params'], i), params)
    np.testing.assert_allclose(metrics['loss'][i], single['loss'], rtol=1e-5)
    np.testing.assert_allclose(metrics['grad_norm'][i], single['grad_norm'], rtol=1e-4)
  # The logged gradient norm is the norm of this beta's gradient, and grows with beta.
  from iac_jax.codec.losses import rate_distortion  # pylint: disable=g-import-not-at-top
  grads = jax.grad(lambda p: rate_distortion(p, module, batch, rng, 300.0)[0])(init)
  np.testing.assert_allclose(metrics['grad_norm'][1], np.sqrt(sum(
      np.sum(np.square(g)) for g in jax.tree.leaves(grads))), rtol=1e-4)
  assert metrics['grad_norm'][1] > metrics['grad_norm'][0]
  # The two betas really trained differently.
  a, b = (trainer.unstack(state['params'], i) for i in (0, 1))
  assert not all(jax.tree.leaves(jax.tree.map(np.allclose, a, b)))


def test_gradient_clipping_caps_the_norm_at_clip_times_beta_and_keeps_the_direction():
  module = MeanScaleHyperprior(get_config('tiny'))
  init = init_params(get_config('tiny'), jax.random.PRNGKey(0))
  batch = np.stack([smooth_image(64, 64, seed=s) for s in range(2)]).astype(np.float32) / 255
  identity = optax.identity()  # the step is then -learning_rate x the (clipped) gradient
  beta = np.float32(100.0)

  single_step = jax.jit(functools.partial(trainer.single_step, model=module,
                                          optimizer=identity))

  def step(grad_clip):
    params, _, metrics = single_step(init, identity.init(init), batch,
                                     jax.random.PRNGKey(1), beta, np.float32(1.0),
                                     np.float32(grad_clip))
    params = dict(params, z_prior=dict(params['z_prior'], medians=init['z_prior']['medians']))
    delta = jax.tree.map(lambda a, b: np.asarray(a - b, np.float64), init, params)
    return delta, float(metrics['grad_norm'])

  raw, norm = step(0.0)
  assert norm > 0.0
  norm_of = lambda t: np.sqrt(sum(np.sum(np.square(a)) for a in jax.tree.leaves(t)))
  np.testing.assert_allclose(norm_of(raw), norm, rtol=1e-4)
  # Below the norm: scaled to clip * beta, same direction; the logged norm is the raw one.
  clip = 0.25 * norm / beta
  clipped, logged = step(clip)
  np.testing.assert_allclose(logged, norm, rtol=1e-6)
  np.testing.assert_allclose(norm_of(clipped), clip * beta, rtol=1e-4)
  # (atol: the step is read back from float32 parameters near 0.1, ulp 7e-9)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, 0.25 * b, rtol=1e-3, atol=1e-7),
               clipped, raw)
  # Above the norm: untouched.
  loose, _ = step(4.0 * norm / beta)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12),
               loose, raw)


def test_clip_by_norm_leaves_a_non_finite_gradient_to_the_optimizer():
  grads = {'w': jnp.array([jnp.inf, 1.0])}
  out = trainer.clip_by_norm(grads, optax.tree.norm(grads), jnp.float32(1.0))
  np.testing.assert_array_equal(out['w'], grads['w'])


def test_non_finite_updates_are_skipped_however_many_come_in_a_row():
  optimizer = trainer.make_optimizer()
  params = {'w': jnp.ones(3)}
  state = optimizer.init(params)
  for _ in range(nonfinite_steps.MAX_CONSECUTIVE + 5):
    updates, state = optimizer.update({'w': jnp.array([1.0, jnp.nan, 0.0])}, state, params)
    np.testing.assert_array_equal(updates['w'], np.zeros(3))
  assert nonfinite_steps.consecutive_nonfinite(state) == nonfinite_steps.MAX_CONSECUTIVE + 5
  updates, state = optimizer.update({'w': jnp.ones(3)}, state, params)
  assert np.all(updates['w'] > 0) and nonfinite_steps.consecutive_nonfinite(state) == 0


def test_a_long_run_of_non_finite_steps_stops_training(tmp_path):
  cfg = trainer.TrainConfig(config_name='tiny', betas=(10.0, 100.0), steps=30,
                             batch_size=2, crop_size=64, log_every=5, save_every=100)
  state = trainer.initial_state(cfg, trainer.make_optimizer(cfg))
  # The beta=10 model is broken (NaN parameters): each of its steps is skipped.
  state['params'] = jax.tree.map(lambda x: x.at[0].set(jnp.nan), state['params'])
  limit = nonfinite_steps.MAX_CONSECUTIVE
  with pytest.raises(FloatingPointError,
                     match=rf'stopped at step {limit}: the last {limit} steps of tiny-beta10 '
                           'had a non-finite'):
    trainer.train(cfg, _images(), str(tmp_path), state=state)
  assert not (tmp_path / 'models').exists()  # nothing saved from the broken run


class _Killed(Exception):
  """Stands in for the process dying right after a checkpoint."""


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
  cfg = trainer.TrainConfig(config_name='tiny', betas=(10.0, 100.0), steps=6,
                             batch_size=2, crop_size=64, learning_rate=3e-3,
                             final_learning_rate=1e-3, log_every=2, save_every=2)
  straight = trainer.train(cfg, _images(), str(tmp_path / 'a'))

  def kill_at_4(trained):
    if trained[0].metadata['steps'] == 4:
      raise _Killed()

  with pytest.raises(_Killed):
    trainer.train(cfg, _images(), str(tmp_path / 'b'), on_save=kill_at_4)
  resumed = trainer.train(cfg, _images(), str(tmp_path / 'b'))
  assert len(straight) == len(resumed) == 2
  for x, y in zip(straight, resumed, strict=True):
    assert x.metadata['steps'] == y.metadata['steps'] == 6
    jax.tree.map(np.testing.assert_array_equal, x.params, y.params)
  # The resumed run logged steps 2 and 4 once, then 6.
  steps = [r['step'] for r in _read_jsonl(tmp_path / 'b' / 'train_log.jsonl')]
  assert steps == [2, 2, 4, 4, 6, 6]


def test_training_lowers_the_loss(tmp_path):
  cfg = trainer.TrainConfig(config_name='tiny', betas=(10.0,), steps=60, batch_size=4,
                             crop_size=64, learning_rate=3e-3, final_learning_rate=1e-3,
                             log_every=20, save_every=60)
  trainer.train(cfg, _images(), str(tmp_path))
  log = _read_jsonl(tmp_path / 'train_log.jsonl')
  assert [r['step'] for r in log] == [20, 40, 60]
  assert log[-1]['loss'] < log[0]['loss']
  # Each window logs the mean and the largest of its gradient norms.
  assert all(r['grad_norm_max'] > r['grad_norm'] > 0 for r in log)
  assert os.path.exists(tmp_path / 'models' / 'tiny-beta10.msgpack')


def test_train_global_app_runs_end_to_end(tmp_path):
  folder = tmp_path / 'photos'
  folder.mkdir()
  for s in range(3):
    Image.fromarray(smooth_image(80, 72, seed=s)).save(folder / f'p{s}.png')
  workdir = tmp_path / 'work'
  cmd = [sys.executable, os.path.join(ROOT, 'experiments', 'train_global.py'),
         f'--images={folder}', f'--workdir={workdir}', '--config=tiny', '--betas=10,100',
         '--steps=4', '--batch_size=2', '--crop_size=64', '--holdout=1', '--log_every=2',
         '--save_every=2', '--eval_every=4']
  proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600,
                        env=dict(os.environ, PYTHONPATH=ROOT))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'steps/s' in proc.stderr and 'ETA' in proc.stderr
  for name in ('tiny-beta10', 'tiny-beta100'):
    meta = json.loads((workdir / 'models' / f'{name}.json').read_text())
    assert meta['steps'] == 4 and meta['data'].startswith('2 photos')
  evals = _read_jsonl(workdir / 'eval_log.jsonl')
  assert {(r['model'], r['image']) for r in evals} == {
      ('tiny-beta10', 'p2.png'), ('tiny-beta100', 'p2.png')}
  # Real bitstreams where the range coder is installed, estimates where it is not.
  assert all(r['bpp_real' if range_coding.available() else 'bpp_eval_estimate'] > 0
             for r in evals)


def test_crops_from_several_workers_come_in_step_order():
  images = [smooth_image(96, 128, seed=i) for i in range(3)]
  with data.CropStream(images, 2, 64, seed=5, start_step=7, min_scale=0.5) as one, \
       data.CropStream(images, 2, 64, seed=5, start_step=7, min_scale=0.5, workers=3) as three:
    for _, a, b in zip(range(7), one, three):
      np.testing.assert_array_equal(a, b)
  with pytest.raises(ValueError, match='workers must be at least 1'):
    data.CropStream(images, 2, 64, seed=5, workers=0)


def test_large_folders_are_decoded_on_demand_with_the_same_batches(tmp_path):
  paths = []
  for s in range(5):
    path = str(tmp_path / f'p{s}.png')
    Image.fromarray(smooth_image(70, 90, seed=s)).save(path)
    paths.append(path)
  in_memory = data.load_images(paths)
  on_demand = data.load_images(paths, max_bytes=1000)
  assert isinstance(in_memory[0], np.ndarray) and on_demand == paths
  with data.CropStream(in_memory, 3, 64, seed=1) as a, \
       data.CropStream(on_demand, 3, 64, seed=1) as b:
    np.testing.assert_array_equal(next(iter(a)), next(iter(b)))
