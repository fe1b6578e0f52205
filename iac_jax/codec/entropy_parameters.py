"""The entropy parameters of y (mu, sigma, table indexes) on one host path, in float64.

The range decoder must pick, for every latent, the very table the encoder picked.
That table comes from sigma = h_s(z_hat), a float computation whose last bits depend
on the device, the XLA version and even the thread count: measured on this project's
CPU, 1 of 893,952 scale indexes changed between 2 threads and 1 thread in float32
(`benchmarks/scale_index_flips.py`), and one changed index desynchronizes the rest of
the stream. So encoder and decoder both compute h_s here, on the host, in float64
NumPy, from the float32 parameters and the integer z: the rounding errors are then
about 1e-16 relative instead of 1e-7, and the same NumPy code runs whatever device
JAX uses. (A float64 result can still in principle land within 1e-16 of a table
boundary; integer arithmetic would rule that out too, at a much higher cost.)
"""

from __future__ import annotations

import numpy as np

from iac_jax.codec.entropy_models import gaussian
from iac_jax.codec.layers import upsampling
from iac_jax.codec.transforms import LEAKY_SLOPE


def _conv3x3(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
  """'SAME' stride-1 3x3 correlation of x[H, W, C] with kernel[3, 3, C, O], float64."""
  padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
  patches = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(0, 1))
  # patches: [H, W, C, 3, 3] -> contract (C, kh, kw) with kernel (kh, kw, C).
  out = np.tensordot(patches, kernel, axes=([3, 4, 2], [0, 1, 2]))
  return out + bias


def _subpixel_deconv(x: np.ndarray, params: dict) -> np.ndarray:
  """The 5x5 stride-2 transposed convolution as in `upsampling.SubpixelConvTranspose`."""
  kernel = np.asarray(upsampling.subpixel_kernel(np.asarray(params['kernel'], np.float32)),
                      np.float64)  # a gather and a mask: exact
  y = _conv3x3(x, kernel, 0.0)
  h, w, d = y.shape
  c = d // 4
  y = y.reshape(h, w, 2, 2, c).transpose(0, 2, 1, 3, 4).reshape(2 * h, 2 * w, c)
  return y + np.asarray(params['bias'], np.float64)


def _leaky_relu(x: np.ndarray) -> np.ndarray:
  return np.where(x >= 0, x, LEAKY_SLOPE * x)


def dequantize_z(z_int: np.ndarray, medians: np.ndarray) -> np.ndarray:
  """z_hat float64 = the coded integers plus the float32 medians of the density."""
  return np.asarray(z_int, np.float64) + np.asarray(medians, np.float32).astype(np.float64)


def hyper_synthesis(h_s_params: dict, z_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mu, sigma) float64[B, 4h, 4w, M] of z_hat[B, h, w, N]; sigma >= SCALE_MIN.

  `z_hat` is `dequantize_z(z_int, medians)`: integers plus float32 medians.
  """
  p = {k: {n: np.asarray(v, np.float64) for n, v in layer.items()}
       for k, layer in h_s_params.items()}
  mus, sigmas = [], []
  for z in np.asarray(z_hat, np.float64):
    h = _leaky_relu(_subpixel_deconv(z, p['deconv0']))
    h = _leaky_relu(_subpixel_deconv(h, p['deconv1']))
    out = _conv3x3(h, p['conv2']['kernel'], p['conv2']['bias'])
    m = out.shape[-1] // 2
    sigmas.append(np.maximum(out[..., :m], gaussian.SCALE_MIN))  # (scales, means)
    mus.append(out[..., m:])
  return np.stack(mus), np.stack(sigmas)


def scale_indexes(sigma: np.ndarray) -> np.ndarray:
  """Nearest table scale (log domain) of float64 sigma, int32."""
  sigma = np.maximum(np.asarray(sigma, np.float64), gaussian.SCALE_MIN)
  step = np.log(gaussian.SCALE_MAX / gaussian.SCALE_MIN) / (gaussian.NUM_SCALES - 1)
  idx = np.round((np.log(sigma) - np.log(gaussian.SCALE_MIN)) / step)
  return np.clip(idx, 0, gaussian.NUM_SCALES - 1).astype(np.int32)
