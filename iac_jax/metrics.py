"""Quality and rate measures on 8-bit images."""

from __future__ import annotations

import numpy as np


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
  """PSNR in dB between two uint8 images of equal shape (RGB, peak 255)."""
  if a.shape != b.shape:
    raise ValueError(f'shapes differ: {a.shape} vs {b.shape}')
  mse = np.mean(np.square(a.astype(np.float64) - b.astype(np.float64)))
  return float('inf') if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def bpp(num_bytes: int, num_pixels: int) -> float:
  """Bits per pixel of a file of `num_bytes` bytes covering `num_pixels` pixels."""
  return 8.0 * num_bytes / num_pixels


def _bd_fit(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
  """Mean of the polynomial fit y(x) (degree <= 3) over [lo, hi]."""
  degree = min(3, len(x) - 1)
  poly = np.polynomial.Polynomial.fit(x, y, degree)
  integral = poly.integ()
  return float((integral(hi) - integral(lo)) / (hi - lo))


def _bd_check(rates, psnrs) -> tuple[np.ndarray, np.ndarray]:
  rates, psnrs = np.asarray(rates, np.float64), np.asarray(psnrs, np.float64)
  if rates.shape != psnrs.shape or rates.ndim != 1 or len(rates) < 2:
    raise ValueError('a curve needs at least two (rate, PSNR) points')
  if np.any(rates <= 0) or not np.all(np.isfinite(psnrs)):
    raise ValueError('rates must be positive and PSNRs finite')
  return rates, psnrs


def bd_psnr(rates_a, psnrs_a, rates_b, psnrs_b) -> float:
  """Bjontegaard delta PSNR of curve B over curve A, in dB (positive: B is better).

  Each curve's PSNR is fitted as a cubic (fewer points: degree points - 1) of
  log(rate); the difference of the fits is averaged over the overlapping log-rate
  interval (VCEG-M33). NaN when the curves do not overlap.
  """
  ra, pa = _bd_check(rates_a, psnrs_a)
  rb, pb = _bd_check(rates_b, psnrs_b)
  la, lb = np.log(ra), np.log(rb)
  lo, hi = max(la.min(), lb.min()), min(la.max(), lb.max())
  if not lo < hi:
    return float('nan')
  return _bd_fit(lb, pb, lo, hi) - _bd_fit(la, pa, lo, hi)


def bd_rate(rates_a, psnrs_a, rates_b, psnrs_b) -> float:
  """Bjontegaard delta rate of curve B against curve A, in percent (negative: B needs
  fewer bits for the same PSNR). log(rate) is fitted as a cubic of PSNR and averaged
  over the overlapping PSNR interval. NaN when the curves do not overlap.
  """
  ra, pa = _bd_check(rates_a, psnrs_a)
  rb, pb = _bd_check(rates_b, psnrs_b)
  lo, hi = max(pa.min(), pb.min()), min(pa.max(), pb.max())
  if not lo < hi:
    return float('nan')
  diff = _bd_fit(pb, np.log(rb), lo, hi) - _bd_fit(pa, np.log(ra), lo, hi)
  return float((np.exp(diff) - 1.0) * 100.0)
