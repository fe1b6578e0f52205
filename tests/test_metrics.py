import numpy as np
import pytest

from iac_jax import metrics

RATES = np.array([0.1, 0.2, 0.4, 0.8])
PSNRS = 30.0 + 4.0 * np.log2(RATES / 0.1)  # 30, 34, 38, 42 dB


def test_bd_psnr_of_a_curve_shifted_up_is_the_shift():
  assert metrics.bd_psnr(RATES, PSNRS, RATES, PSNRS + 1.0) == pytest.approx(1.0)
  assert metrics.bd_psnr(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-12)


def test_bd_rate_of_a_curve_needing_ten_percent_fewer_bits_is_minus_ten():
  assert metrics.bd_rate(RATES, PSNRS, 0.9 * RATES, PSNRS) == pytest.approx(-10.0)
  assert metrics.bd_rate(RATES, PSNRS, 2.0 * RATES, PSNRS) == pytest.approx(100.0)


def test_bd_rate_and_psnr_agree_on_a_straight_line_in_log_rate():
  # PSNR = 30 + (4 / ln 2) * ln(rate / 0.1): +1 dB equals a rate factor 2^(-1/4).
  shifted = PSNRS + 1.0
  assert metrics.bd_rate(RATES, PSNRS, RATES, shifted) == pytest.approx(
      (2.0**-0.25 - 1) * 100, rel=1e-6)


def test_bd_metrics_use_only_the_overlap_and_handle_few_points():
  # B covers only the upper half of A's range, two points: a line fit.
  assert metrics.bd_psnr(RATES, PSNRS, RATES[2:], PSNRS[2:] + 0.5) == pytest.approx(0.5)
  assert np.isnan(metrics.bd_psnr(RATES[:2], PSNRS[:2], RATES[2:], PSNRS[2:]))
  with pytest.raises(ValueError, match='at least two'):
    metrics.bd_rate([0.1], [30.0], RATES, PSNRS)
