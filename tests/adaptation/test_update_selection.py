import dataclasses

import jax
import numpy as np
import pytest

import iac_jax
from iac_jax.adaptation import finetuning, update_coding, update_selection, video_codec
from iac_jax.codec import bitstream
from tests.conftest import smooth_image

CONFIG = finetuning.AdaptationConfig(method='full', steps=30, learning_rate=2e-3, beta=10.0)


def _clip():
  return np.stack([smooth_image(64, 64, seed=s) for s in range(3)])


@pytest.fixture(scope='module')
def adapted(tiny_model):
  frames = video_codec.padded_input(_clip())
  result = finetuning.adapt(tiny_model.params, frames, jax.random.PRNGKey(0), CONFIG,
                            tiny_model.config)
  return frames, result


def test_groups_are_layers_and_the_z_density():
  assert update_selection.group_of("['g_s']['deconv0']['kernel']") == 'g_s/deconv0'
  assert update_selection.group_of("['z_prior']['matrix3']") == 'z_prior'


def _choose(model, encoder_params, ints, frames):
  return update_selection.choose(model.params, encoder_params, ints, CONFIG.prior, frames,
                                 model.config, CONFIG.beta,
                                 video_pixels=int(np.prod(frames.shape[:3])))


def test_a_group_that_costs_more_than_it_saves_is_not_sent(tiny_model, adapted):
  frames, result = adapted
  rng = np.random.default_rng(0)
  ints = jax.tree.map(np.zeros_like, jax.tree.map(np.asarray, result.update_ints))
  # A large random change of the last synthesis layer and a small one of the first:
  # costly in bits, and no help to the frames.
  for layer, size in (('deconv3', 30), ('deconv0', 1)):
    kernel = ints['g_s'][layer]['kernel']
    ints['g_s'][layer]['kernel'] = rng.integers(-size, size + 1, kernel.shape)
  global_encoder = {k: tiny_model.params[k] for k in result.encoder_params}
  choice = _choose(tiny_model, global_encoder, ints, frames)
  assert {'g_s/deconv3', 'g_s/deconv0'} <= set(choice.dropped)
  assert not any(np.any(v) for v in jax.tree.leaves(choice.ints))
  assert choice.costs['none']['J'] < choice.costs['all']['J']
  assert choice.costs['all but g_s/deconv3']['J'] < choice.costs['all']['J']


def test_a_useful_update_is_sent_and_never_costs_more_than_none(tiny_model, adapted):
  frames, result = adapted
  choice = _choose(tiny_model, result.encoder_params, result.update_ints, frames)
  assert choice.sent and set(choice.sent) | set(choice.dropped) == set(
      update_selection.groups(result.update_ints))
  sent = update_selection.rd_cost(
      {**tiny_model.params, **result.encoder_params},
      update_coding.decoder_side(tiny_model.params), choice.ints, CONFIG.prior, frames,
      tiny_model.config, CONFIG.beta, int(np.prod(frames.shape[:3])))
  assert sent['J'] <= min(choice.costs['none']['J'], choice.costs['all']['J'])
  assert sent['J'] < choice.costs['none']['J'] / 2  # adaptation helped a lot here
  assert not choice.global_encoder and sent['J'] < choice.costs['global']['J'] / 2


def test_the_stream_decodes_exactly_with_the_groups_sent(tiny_model):
  config = dataclasses.replace(CONFIG, choose_update=True)
  enc = video_codec.encode_video_detailed(tiny_model, _clip(), fps=2.0, config=config)
  assert enc.update_choice is not None
  np.testing.assert_array_equal(iac_jax.decode(enc.data, tiny_model), enc.reconstruction)
  # What the stream carries is exactly the choice: zeros in every dropped group.
  header, sections = bitstream.unpack(enc.data)
  assert header.frames == 3
  sent, _ = update_coding.decode_update(
      sections[0].payload, update_coding.decoder_side(tiny_model.params))
  jax.tree.map(np.testing.assert_array_equal, sent,
               jax.tree.map(np.asarray, enc.update_choice.ints))
  assert enc.update_choice.costs[
      'none']['J'] >= min(c['J'] for c in enc.update_choice.costs.values())


def _spoiled(result):
  """The adaptation's outcome with an encoder far worse than the global one."""
  rng = np.random.default_rng(1)
  noisy = jax.tree.map(lambda a: np.asarray(a) + rng.normal(0, 0.5, np.shape(a)).astype(
      np.float32), result.encoder_params)
  return dataclasses.replace(result, encoder_params=noisy)


@pytest.mark.parametrize('method', ['full', 'encoder'])
def test_a_worse_adapted_encoder_falls_back_to_the_global_model(tiny_model, adapted, method):
  _frames, result = adapted
  result = _spoiled(result)
  if method == 'encoder':
    result = dataclasses.replace(result, update_ints=None)
  config = dataclasses.replace(CONFIG, method=method, choose_update=True)
  enc = video_codec.encode_adapted(tiny_model, _clip(), 2.0, config, result)
  choice = enc.update_choice
  assert choice.global_encoder
  assert choice.costs['global']['J'] < choice.costs['none']['J']
  assert choice.costs['global']['J'] == min(c['J'] for c in choice.costs.values())
  # Coded with the global model: the frames are those of no adaptation at all.
  plain = video_codec.encode_video_detailed(
      tiny_model, _clip(), 2.0, dataclasses.replace(CONFIG, method='none'))
  np.testing.assert_array_equal(enc.reconstruction, plain.reconstruction)
  np.testing.assert_array_equal(iac_jax.decode(enc.data, tiny_model), enc.reconstruction)
  assert choice.ints is None and enc.update_bits == 0  # not even the zeros' static cost
  assert len(enc.data) == len(plain.data)

