import numpy as np
import pytest

from iac_jax.adaptation.model_prior import ModelPrior
from iac_jax.codec.entropy_models.tables import code_lengths


def test_discretized_prior_sums_to_one():
  prior = ModelPrior()
  k = np.arange(-20000, 20001, dtype=np.float64)
  assert abs(prior.bin_probability(k, np).sum() - 1.0) < 1e-6


def test_zero_update_is_nearly_free_and_far_updates_cost_more():
  prior = ModelPrior()
  bits = -np.log2(prior.bin_probability(np.arange(0, 10, dtype=np.float64), np))
  assert bits[0] < 0.01
  assert np.all(np.diff(bits) > 0)
  assert bits[1] > 5  # leaving the spike costs several bits


def test_table_code_lengths_are_close_to_the_prior():
  prior = ModelPrior()
  lengths = code_lengths(prior.tables(), 0)
  ideal = -np.log2(prior.bin_probability(
      np.arange(-prior.table_radius, prior.table_radius + 1, dtype=np.float64), np))
  assert lengths.shape == ideal.shape
  # Where the prior has mass the 16-bit table is within 5% of it (a 2^-15 bin gets a
  # count of 1 or 2); the zero bin pays
  # for the one count every tail symbol needs.
  near = np.abs(np.arange(-prior.table_radius, prior.table_radius + 1)) <= 10
  np.testing.assert_allclose(lengths[near & (ideal > 1)], ideal[near & (ideal > 1)], rtol=0.05)
  assert lengths[prior.table_radius] < 0.01


def test_invalid_priors_are_rejected():
  with pytest.raises(ValueError, match=r'invalid model prior ModelPrior\(t=0.0'):
    ModelPrior(t=0.0)
  with pytest.raises(ValueError, match=r'table_radius must be in \[1, 30000\]'):
    ModelPrior(table_radius=0)
