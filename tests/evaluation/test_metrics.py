import numpy as np
import pytest

from iac_jax.evaluation import metrics

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


def _noisy_pair(seed: int = 0):
  rng = np.random.default_rng(seed)
  field = np.cumsum(np.cumsum(rng.normal(size=(180, 200, 3)), 0), 1)
  clean = ((field - field.min()) / np.ptp(field) * 255).astype(np.uint8)
  noisy = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
  return clean, noisy


def test_ms_ssim_matches_tensorflows_reference():
  tf = pytest.importorskip('tensorflow')  # the test suite may use TF; the library's metrics do not
  clean, noisy = _noisy_pair()
  ours = metrics.ms_ssim(clean, noisy)
  reference = float(tf.image.ssim_multiscale(tf.constant(clean), tf.constant(noisy), 255.0))
  assert ours == pytest.approx(reference, abs=2e-4)  # TF computes in float32
  assert 0.5 < ours < 0.999


def test_ms_ssim_is_one_for_equal_images_falls_with_noise_and_refuses_small_images():
  clean, noisy = _noisy_pair(1)
  assert metrics.ms_ssim(clean, clean) == pytest.approx(1.0)
  noisier = np.clip(clean + np.random.default_rng(2).normal(0, 30, clean.shape), 0,
                    255).astype(np.uint8)
  assert metrics.ms_ssim(clean, noisier) < metrics.ms_ssim(clean, noisy)
  with pytest.raises(ValueError, match='at least 161 pixels'):
    metrics.ms_ssim(clean[:160], noisy[:160])


def test_mean_psnr_is_the_mean_of_per_frame_psnrs():
  a = np.zeros((2, 4, 4, 3), np.uint8)
  b = a.copy()
  b[0] += 1  # MSE 1: 48.13 dB
  b[1] += 2  # MSE 4: 42.11 dB
  expected = (10 * np.log10(255**2) + 10 * np.log10(255**2 / 4)) / 2
  assert metrics.mean_psnr_db(a, b) == pytest.approx(expected)
