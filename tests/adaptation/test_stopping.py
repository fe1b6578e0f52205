import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iac_jax.adaptation import finetuning
from iac_jax.adaptation.stopping import PlateauStop
from tests.conftest import smooth_image


def _first_stop(rule: PlateauStop, losses: np.ndarray) -> int | None:
  for done in range(1, len(losses) + 1):
    if rule.should_stop(losses[:done], seconds=0.0):
      return done
  return None


@pytest.mark.parametrize('seed', range(4))
def test_stops_on_a_plateau_of_a_noisy_loss_and_not_before(seed):
  rng = np.random.default_rng(seed)
  steps = np.arange(1500)
  # Falls steeply, then slowly, and is flat from step 600 on; noise of 3% per step.
  clean = 100 + 60 * np.exp(-steps / 60) + 8 * np.clip(1 - steps / 600, 0, None)
  noisy = clean * (1 + 0.03 * rng.standard_normal(len(steps)))
  stop = _first_stop(PlateauStop(window=50, min_improvement=0.002, patience=2), noisy)
  assert stop is not None and stop % 50 == 0
  assert 600 < stop <= 600 + 4 * 50, stop


def test_a_loss_that_keeps_improving_is_not_stopped():
  steps = np.arange(2000)
  losses = 200 * 0.99 ** (steps / 50)  # 1% better every window, above the 0.2% asked
  assert _first_stop(PlateauStop(window=50, patience=2), losses) is None


def test_the_time_cap_stops_at_the_next_window_boundary():
  rule = PlateauStop(window=10, max_seconds=5.0)
  losses = np.linspace(10, 1, 30)
  assert not rule.should_stop(losses[:9], seconds=99.0)  # not a boundary
  assert rule.should_stop(losses[:10], seconds=5.0)
  assert not rule.should_stop(losses[:10], seconds=4.9)


def test_bad_rules_are_refused():
  with pytest.raises(ValueError, match='invalid stopping rule'):
    PlateauStop(window=0)


def test_adapt_stops_at_the_same_step_however_it_is_chunked(tiny_model):
  x = jnp.asarray(np.stack([smooth_image(64, 64, seed=s) for s in range(2)]),
                  jnp.float32) / 255.0
  config = finetuning.AdaptationConfig(method='full', steps=24, learning_rate=1e-3, beta=10.0)
  # No window can improve by 1000%: it stops after patience + 1 windows, at step 8.
  rule = PlateauStop(window=4, min_improvement=10.0, patience=1)
  seen = []
  a = finetuning.adapt(tiny_model.params, x, jax.random.PRNGKey(0), config,
                       tiny_model.config, steps_per_call=6, stop=rule)
  b = finetuning.adapt(tiny_model.params, x, jax.random.PRNGKey(0), config,
                       tiny_model.config, steps_per_call=1, stop=rule,
                       progress=lambda done, m: seen.append(done), progress_every=12)
  assert len(a.history['loss']) == len(b.history['loss']) == 8
  assert seen == [8]  # the last progress report is where it stopped
  np.testing.assert_allclose(a.history['loss'], b.history['loss'], rtol=1e-4)
  jax.tree.map(functools.partial(np.testing.assert_allclose, atol=1e-6), a.delta, b.delta)
  full = finetuning.adapt(tiny_model.params, x, jax.random.PRNGKey(0), config,
                          tiny_model.config, steps_per_call=6)
  assert len(full.history['loss']) == 24
  np.testing.assert_allclose(full.history['loss'][:8], a.history['loss'], rtol=1e-4)


def test_a_stop_before_the_decay_is_reported(tiny_model, caplog):
  x = jnp.asarray(smooth_image(64, 64, seed=0)[None], jnp.float32) / 255.0
  rule = PlateauStop(window=4, min_improvement=10.0, patience=1)  # stops at step 8
  for decay_at, warned in ((0.5, True), (0.25, False), (0.0, False)):
    config = finetuning.AdaptationConfig(method='full', steps=24, learning_rate=1e-3,
                                         beta=10.0, decay_at=decay_at)
    caplog.clear()
    result = finetuning.adapt(tiny_model.params, x, jax.random.PRNGKey(0), config,
                              tiny_model.config, stop=rule)
    assert len(result.history['loss']) == 8
    assert ('before its learning-rate decay at step 12' in caplog.text) == warned, decay_at
