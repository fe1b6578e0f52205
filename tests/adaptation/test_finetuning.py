import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import iac_jax
from iac_jax.adaptation import finetuning, update_coding, video_codec
from iac_jax.codec.hyperprior import MeanScaleHyperprior
from iac_jax.codec.image_codec import DivergedError, pad_to_multiple
from iac_jax.optim import nonfinite_steps
from tests.conftest import smooth_image


def _clip(frames=4, height=60, width=100):
  return np.stack([smooth_image(height, width, seed=s) for s in range(frames)])


FULL = finetuning.AdaptationConfig(method='full', steps=40, learning_rate=2e-3, beta=10.0)


@pytest.fixture(scope='module')
def full_encoding(tiny_model):
  return video_codec.encode_video_detailed(tiny_model, _clip(), fps=2.0, config=FULL)


def test_decoded_frames_equal_the_encoders_reconstruction(tiny_model, full_encoding):
  assert full_encoding.update_bits > 0
  decoded = iac_jax.decode(full_encoding.data, tiny_model)
  assert decoded.shape == (4, 60, 100, 3)
  np.testing.assert_array_equal(decoded, full_encoding.reconstruction)


def test_full_adaptation_lowers_the_rdm_loss(full_encoding):
  loss = full_encoding.history['loss']
  assert loss.shape == (FULL.steps,)
  assert np.mean(loss[-5:]) < 0.9 * np.mean(loss[:5])


def test_coded_size_agrees_with_the_estimate(tiny_model, full_encoding):
  clip = _clip()
  x = jnp.asarray(np.stack([pad_to_multiple(f) for f in clip]), jnp.float32) / 255.0
  result = finetuning.adapt(tiny_model.params, x, jax.random.PRNGKey(0), FULL,
                            tiny_model.config, video_pixels=clip[..., 0].size)
  theta = update_coding.apply_update(update_coding.decoder_side(tiny_model.params),
                                     result.update_ints, FULL.prior.t)
  params = {**tiny_model.params, **result.encoder_params, **theta}
  out = MeanScaleHyperprior(tiny_model.config).apply({'params': params}, x, training=False)
  frame_bits = float(jnp.sum(out['y_bits']) + jnp.sum(out['z_bits']))
  model_bits = float(update_coding.model_rate_bits(result.delta, FULL.prior))
  coded = full_encoding.update_bits + full_encoding.frame_bits.sum()
  estimated = frame_bits + model_bits
  assert abs(coded - estimated) <= 0.03 * estimated + 8 * 4 * 5


def test_model_rate_levels_off_under_the_rdm_loss(tiny_model):
  # With M in the loss the update stays far cheaper than without it.
  clip = _clip()
  x = jnp.asarray(np.stack([pad_to_multiple(f) for f in clip]), jnp.float32) / 255.0
  bits = {}
  for method in ('full', 'full-no-model-rate'):
    config = finetuning.AdaptationConfig(method=method, steps=40, learning_rate=2e-3,
                                         beta=10.0)
    r = finetuning.adapt(tiny_model.params, x, jax.random.PRNGKey(0), config,
                         tiny_model.config, video_pixels=clip[..., 0].size)
    bits[method] = r.history['model_bits']
  assert bits['full'][-1] < 0.5 * bits['full-no-model-rate'][-1]


@pytest.mark.parametrize('method', finetuning.METHODS)
def test_every_method_produces_a_decodable_stream(tiny_model, method):
  config = finetuning.AdaptationConfig(method=method, steps=3, learning_rate=1e-3, beta=10.0)
  enc = video_codec.encode_video_detailed(tiny_model, _clip(2, 30, 40), 2.0, config)
  np.testing.assert_array_equal(iac_jax.decode(enc.data, tiny_model), enc.reconstruction)
  assert (enc.update_bits > 0) == config.sends_update


def test_bad_video_inputs(tiny_model):
  with pytest.raises(TypeError, match='expected uint8 frames, got dtype float32'):
    iac_jax.encode_video(tiny_model, _clip().astype(np.float32), 2.0)
  with pytest.raises(ValueError, match=r'expected frames \[T, H, W, 3\]'):
    iac_jax.encode_video(tiny_model, _clip()[0], 2.0)
  with pytest.raises(ValueError, match='method'):
    iac_jax.encode_video(tiny_model, _clip(), 2.0, method='magic')
  with pytest.raises(ValueError, match='frame rate'):
    iac_jax.encode_video(tiny_model, _clip(), 0.0, method='none')


def test_chunked_adaptation_equals_one_call(tiny_model):
  x = jnp.asarray(_clip(2, 64, 64), jnp.float32) / 255.0
  config = finetuning.AdaptationConfig(method='full', steps=6, learning_rate=1e-3, beta=10.0)
  seen = []
  a = finetuning.adapt(tiny_model.params, x, jax.random.PRNGKey(0), config, tiny_model.config,
                       steps_per_call=6)
  b = finetuning.adapt(tiny_model.params, x, jax.random.PRNGKey(0), config, tiny_model.config,
                       progress=lambda done, m: seen.append(done), progress_every=3,
                       steps_per_call=1)
  assert seen == [3, 6]
  np.testing.assert_allclose(a.history['loss'], b.history['loss'], rtol=1e-4)
  jax.tree.map(functools.partial(np.testing.assert_allclose, atol=1e-6), a.delta, b.delta)


class _Killed(Exception):
  """Stands in for the process dying right after a checkpoint."""


def test_adaptation_killed_and_resumed_equals_an_uninterrupted_run(tiny_model, tmp_path):
  frames = jnp.asarray(np.stack([smooth_image(64, 64, seed=s) for s in range(2)]),
                       jnp.float32) / 255.0
  config = finetuning.AdaptationConfig(method='full', steps=6, learning_rate=1e-3)
  rng = jax.random.PRNGKey(5)
  args = (tiny_model.params, frames, rng, config, tiny_model.config)
  straight = finetuning.adapt(*args)

  def die_at_4(done, _):
    if done == 4:
      raise _Killed()

  ckpt = str(tmp_path / 'ckpt')
  with pytest.raises(_Killed):
    finetuning.adapt(*args, progress=die_at_4, progress_every=2, checkpoint_dir=ckpt,
                     checkpoint_every=2)
  resumed = finetuning.adapt(*args, checkpoint_dir=ckpt, checkpoint_every=2)
  assert jax.tree.leaves(straight.update_ints)
  jax.tree.map(np.testing.assert_array_equal, straight.update_ints, resumed.update_ints)
  jax.tree.map(np.testing.assert_array_equal, straight.encoder_params,
               resumed.encoder_params)
  np.testing.assert_array_equal(straight.history['loss'], resumed.history['loss'])
  # The directory belongs to this run: another run refuses it.
  other = finetuning.AdaptationConfig(method='full', steps=8, learning_rate=1e-3)
  with pytest.raises(ValueError, match='different run'):
    finetuning.adapt(tiny_model.params, frames, rng, other, tiny_model.config,
                     checkpoint_dir=ckpt)


def test_steps_with_non_finite_loss_are_skipped_and_never_reach_the_stream(tiny_model):
  frames = jnp.full((2, 64, 64, 3), jnp.nan, jnp.float32)
  config = finetuning.AdaptationConfig(method='full', steps=3, learning_rate=1e-3)
  result = finetuning.adapt(tiny_model.params, frames, jax.random.PRNGKey(0), config,
                            tiny_model.config)
  assert np.isnan(result.history['loss']).all()
  nothing_sent = jax.tree.map(lambda p: np.zeros(np.shape(p)),
                              update_coding.decoder_side(tiny_model.params))
  jax.tree.map(np.testing.assert_array_equal, result.update_ints, nothing_sent)
  jax.tree.map(np.testing.assert_array_equal, result.encoder_params,
               {k: tiny_model.params[k] for k in ('g_a', 'h_a')})
  broken = {'phi': {'w': np.array([np.nan])}, 'delta': {'w': np.zeros(1)}}
  with pytest.raises(DivergedError, match='non-finite parameters'):
    finetuning.finish(broken, [result.history], config)


def test_a_long_run_of_non_finite_steps_stops_the_adaptation(tiny_model):
  frames = jnp.full((1, 64, 64, 3), jnp.nan, jnp.float32)
  limit = nonfinite_steps.MAX_CONSECUTIVE
  config = finetuning.AdaptationConfig(method='full', steps=limit + 5, frames_per_step=1)
  with pytest.raises(DivergedError, match=f'the last {limit} steps had a non-finite loss'):
    finetuning.adapt(tiny_model.params, frames, jax.random.PRNGKey(0), config,
                     tiny_model.config, steps_per_call=1)


def test_encode_video_adapts_with_the_models_own_beta(tiny_model):
  import dataclasses  # pylint: disable=g-import-not-at-top
  model = dataclasses.replace(tiny_model, metadata={**tiny_model.metadata, 'beta': 3.0})
  frames = np.stack([smooth_image(32, 32, seed=s) for s in range(2)])
  encode = lambda **kw: iac_jax.encode_video(model, frames, 2.0, steps=3, crop_size=0,
                                             learning_rate=1e-2, **kw)
  default = encode()
  assert default == encode(beta=3.0)
  assert default != encode(beta=300.0)


def test_chunk_size_is_the_largest_divisor_not_above_the_target():
  assert [finetuning.chunk_size(12, t) for t in (0, 1, 5, 6, 12, 50)] == [1, 1, 4, 6, 12, 12]
  assert finetuning.chunk_size(7, 3) == 1  # a prime: one step at a time


def test_methods_are_described_once_and_looked_up_by_name():
  assert finetuning.METHODS == tuple(finetuning.METHOD_TABLE)
  full = finetuning.AdaptationConfig(method='full').method_spec
  assert full.sends_update and full.with_model_rate and full.quantize and full.finetunes
  assert not finetuning.method_by_name('encoder').sends_update
  assert not finetuning.method_by_name('full-no-qat').quantize
  assert not finetuning.method_by_name('none').uses_steps
  with pytest.raises(ValueError, match=r"unknown method 'magic'; choose from \('none'"):
    finetuning.method_by_name('magic')


def _padded(clip):
  return jnp.asarray(np.stack([pad_to_multiple(f) for f in clip]), jnp.float32) / 255.0


def test_a_snapshot_equals_the_shorter_run(tiny_model):
  # Step keys do not depend on the run's length, so the state after 3 of 6 steps is
  # exactly that of a 3-step run: one trajectory measures several step budgets.
  x = _padded(_clip(frames=2))
  config = finetuning.AdaptationConfig(method='full', steps=6, learning_rate=2e-3, beta=10.0)
  seen = {}
  finetuning.adapt(tiny_model.params, x, jax.random.PRNGKey(3), config, tiny_model.config,
                   snapshot_at=[3], on_snapshot=lambda n, r: seen.setdefault(n, r))
  short = finetuning.adapt(tiny_model.params, x, jax.random.PRNGKey(3),
                           finetuning.AdaptationConfig(method='full', steps=3,
                                                       learning_rate=2e-3, beta=10.0),
                           tiny_model.config)
  assert list(seen) == [3]
  np.testing.assert_array_equal(seen[3].history['loss'], short.history['loss'])
  for a, b in zip(jax.tree.leaves(seen[3].update_ints), jax.tree.leaves(short.update_ints)):
    np.testing.assert_array_equal(a, b)


def test_update_groups_leave_the_other_parameters_unsent(tiny_model):
  x = _padded(_clip(frames=2))
  config = finetuning.AdaptationConfig(method='full', steps=8, learning_rate=3e-3, beta=10.0,
                                       update_groups='synthesis')
  result = finetuning.adapt(tiny_model.params, x, jax.random.PRNGKey(0), config,
                            tiny_model.config)
  moved = {k: any(np.any(v) for v in jax.tree.leaves(result.update_ints[k]))
           for k in result.update_ints}
  assert moved == {'g_s': True, 'h_s': False, 'z_prior': False}


def test_a_zero_delta_learning_rate_sends_nothing_but_moves_the_encoder(tiny_model):
  x = _padded(_clip(frames=2))
  config = finetuning.AdaptationConfig(method='full', steps=4, learning_rate=3e-3,
                                       delta_learning_rate=0.0, beta=10.0)
  result = finetuning.adapt(tiny_model.params, x, jax.random.PRNGKey(0), config,
                            tiny_model.config)
  assert not any(np.any(v) for v in jax.tree.leaves(result.update_ints))
  assert any(np.any(np.asarray(a) != np.asarray(b)) for a, b in zip(
      jax.tree.leaves(result.encoder_params),
      jax.tree.leaves({k: tiny_model.params[k] for k in ('g_a', 'h_a')})))


def test_schedule_warms_up_and_decays():
  config = finetuning.AdaptationConfig(steps=100, learning_rate=1e-3, warmup_steps=10,
                                       decay_at=0.8)
  schedule = finetuning._schedule(config, 1e-3)  # pylint: disable=protected-access
  np.testing.assert_allclose([float(schedule(s)) for s in (0, 4, 9, 50, 79, 80, 99)],
                             [1e-4, 5e-4, 1e-3, 1e-3, 1e-3, 1e-4, 1e-4], rtol=1e-6)
  with pytest.raises(ValueError, match='update_groups'):
    finetuning.AdaptationConfig(update_groups='decoder')
  with pytest.raises(ValueError, match='schedule'):
    finetuning.AdaptationConfig(decay_at=1.0)


def test_effort_presets_end_at_a_tenth_of_their_rate():
  # A constant rate leaves a decayed global model wherever the last noisy steps put it.
  for name in finetuning.EFFORTS:
    config = finetuning.config_for_effort(name)
    schedule = finetuning._schedule(config, config.learning_rate)  # pylint: disable=protected-access
    assert float(schedule(0)) == pytest.approx(config.learning_rate)
    assert float(schedule(config.steps - 1)) == pytest.approx(config.learning_rate / 10)
  constant = finetuning.config_for_effort('default', decay_at=0.0)
  assert finetuning._schedule(constant, 1e-4) == 1e-4  # pylint: disable=protected-access


def test_effort_presets_are_valid_configs_and_take_overrides():
  for name in finetuning.EFFORTS:
    assert finetuning.config_for_effort(name).steps > 0
  default = finetuning.config_for_effort()
  assert default == finetuning.config_for_effort('default', steps=None, learning_rate=None)
  assert finetuning.config_for_effort('fast').steps <= default.steps
  assert finetuning.config_for_effort('high').steps >= default.steps
  tuned = finetuning.config_for_effort('default', steps=7, update_groups='synthesis', beta=30.0)
  assert (tuned.steps, tuned.update_groups, tuned.beta) == (7, 'synthesis', 30.0)
  assert tuned.choose_update == default.choose_update
  with pytest.raises(ValueError, match='effort'):
    finetuning.config_for_effort('maximum')
