"""How far the shipped weight files could shrink: their bytes under zlib (what git
stores), lzma and bz2, against the order-0 entropy of their grid integers.

  .venv/bin/python benchmarks/weight_entropy.py [--models=small-beta100,...]

Each snapshot of shipped weights adds its files' zlib size to the git history. The
bound counts, per gridded leaf and output channel, the empirical entropy of that
channel's integers (an ideal adaptive coder per channel, its tables free), plus 16 bits
for every float16 value (steps, small leaves): no file of these integers coded value
by value, without a model across weights, gets below it. Results: benchmarks/README.md.
"""

from __future__ import annotations

import bz2
import lzma
import os
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE)]

import jax
import numpy as np
from absl import app, flags

from iac_jax.codec import models, weight_grid

_MODELS = flags.DEFINE_list('models', ['small-beta500', 'small-beta100', 'small-beta30',
                                       'small-beta10'], 'Shipped models (or paths).')


def entropy_bits(values: np.ndarray) -> float:
  """Empirical order-0 entropy of `values`, in bits, times their count."""
  _, counts = np.unique(values, return_counts=True)
  p = counts / counts.sum()
  return float(-(counts * np.log2(p)).sum())


def bound_bits(params) -> float:
  bits = 0.0
  for leaf in jax.tree.leaves(params):
    stored = weight_grid.encode_leaf(np.asarray(leaf))
    if not isinstance(stored, dict):
      bits += np.asarray(stored).size * np.asarray(stored).itemsize * 8
      continue
    step = stored[weight_grid.STEP].astype(np.float32)
    k = np.rint(weight_grid.decode_leaf(stored) / step).astype(np.int32)  # exact: k * step
    k = k.reshape(-1, k.shape[-1])
    bits += sum(entropy_bits(k[:, j]) for j in range(k.shape[1])) + 16 * k.shape[1]
  return bits


def main(argv):
  del argv
  print('| model | file | zlib 6 (git) | lzma 9e | bz2 9 | entropy bound |')
  print('|---|---:|---:|---:|---:|---:|')
  for name in _MODELS.value:
    model = models.load_model(name)
    raw = models.params_bytes(model.params)
    sizes = [len(raw), len(zlib.compress(raw, 6)),
             len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)),
             len(bz2.compress(raw, 9)), bound_bits(model.params) / 8]
    print(f'| {name} | ' + ' | '.join(f'{s / 1e6:.3f} MB' for s in sizes) + ' |', flush=True)


if __name__ == '__main__':
  app.run(main)
