"""Quality and rate measures on 8-bit images."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
  """PSNR in dB between two uint8 images of equal shape (RGB, peak 255)."""
  if a.shape != b.shape:
    raise ValueError(f'shapes differ: {a.shape} vs {b.shape}')
  mse = np.mean(np.square(a.astype(np.float64) - b.astype(np.float64)))
  return float('inf') if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def mean_psnr_db(frames: np.ndarray, decoded: np.ndarray) -> float:
  """Mean over frames of the RGB PSNR of uint8[T, H, W, 3] stacks (METHOD.md section 6)."""
  if frames.shape != decoded.shape:
    raise ValueError(f'shapes differ: {frames.shape} vs {decoded.shape}')
  return float(np.mean([psnr_db(a, b) for a, b in zip(frames, decoded)]))


_MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_SSIM_WINDOW, _SSIM_SIGMA = 11, 1.5
MS_SSIM_MIN_SIDE = (_SSIM_WINDOW - 1) * 2**(len(_MS_SSIM_WEIGHTS) - 1) + 1  # 161


def _gaussian_valid(x: np.ndarray) -> np.ndarray:
  """Separable 11-tap Gaussian (sigma 1.5) over axes 0 and 1, 'valid' borders."""
  taps = np.exp(-0.5 * ((np.arange(_SSIM_WINDOW) - _SSIM_WINDOW // 2) / _SSIM_SIGMA)**2)
  taps /= taps.sum()
  r = _SSIM_WINDOW // 2
  x = ndimage.correlate1d(x, taps, axis=0, mode='constant')[r:-r]
  return ndimage.correlate1d(x, taps, axis=1, mode='constant')[:, r:-r]


def _ssim_terms(a: np.ndarray, b: np.ndarray, peak: float) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean SSIM and mean contrast-structure term of two float images."""
  c1, c2 = (0.01 * peak)**2, (0.03 * peak)**2
  mu_a, mu_b = _gaussian_valid(a), _gaussian_valid(b)
  var_a = _gaussian_valid(a * a) - mu_a**2
  var_b = _gaussian_valid(b * b) - mu_b**2
  cov = _gaussian_valid(a * b) - mu_a * mu_b
  cs = (2 * cov + c2) / (var_a + var_b + c2)
  luminance = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
  return np.mean(luminance * cs, axis=(0, 1)), np.mean(cs, axis=(0, 1))


def ms_ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
  """Multi-scale SSIM (Wang, Simoncelli, Bovik 2003) of two images [H, W, C].

  Five scales with the paper's weights, an 11-tap Gaussian window (sigma 1.5) without
  padding, 2x2 average pooling between scales, computed per channel and averaged
  over channels (as `tf.image.ssim_multiscale`). Both sides must be at least
  `MS_SSIM_MIN_SIDE` (161) pixels, or the coarsest scale has no valid window.
  """
  if a.shape != b.shape or a.ndim != 3:
    raise ValueError(f'need two [H, W, C] images of equal shape: {a.shape} vs {b.shape}')
  if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
    raise ValueError(f'MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} pixels per '
                     f'side, got {a.shape[0]}x{a.shape[1]}')
  a, b = a.astype(np.float64), b.astype(np.float64)
  factors = []
  for scale in range(len(_MS_SSIM_WEIGHTS)):
    ssim, cs = _ssim_terms(a, b, peak)
    last = scale == len(_MS_SSIM_WEIGHTS) - 1
    factors.append(np.maximum(ssim if last else cs, 0.0)**_MS_SSIM_WEIGHTS[scale])
    if not last:
      h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
      a = a[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))
      b = b[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))
  return float(np.mean(np.prod(factors, axis=0)))


def bpp(num_bytes: int, num_pixels: int) -> float:
  """Bits per pixel of a file of `num_bytes` bytes covering `num_pixels` pixels."""
  return 8.0 * num_bytes / num_pixels


def rises_with_rate(rates, psnrs) -> bool:
  """PSNR rises strictly with rate; Bjontegaard's polynomial fits mean nothing otherwise."""
  order = np.argsort(rates)
  return bool(np.all(np.diff(np.asarray(psnrs, np.float64)[order]) > 0))


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
