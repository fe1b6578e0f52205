"""One-off (2026-12-04): the previous layout's shipped weights -> the CompressAI layout.

Keeps g_a, g_s (kernels flipped to PyTorch's transposed-convolution convention) and h_a,
re-expresses GDN parameters for the (2^-18)^2 pedestal, re-initializes h_s and the z density.
Kept as the record of how the shipped weights were made; paths are those of that session.
"""
import json
import sys

import jax
import numpy as np
from flax import serialization

from iac_jax.codec import models
from iac_jax.codec.configs import get_config
from iac_jax.codec.hyperprior import init_params

OLD_PED = 2.0**-18
NEW_PED = 2.0**-36
def gdn_convert(p, minimum):
  v = np.maximum(p, np.sqrt(minimum + OLD_PED))**2 - OLD_PED
  return np.sqrt(np.maximum(v + NEW_PED, NEW_PED)).astype(np.float32)
def migrate(old_path, seed=0):
  with open(old_path, 'rb') as f:
    raw = serialization.msgpack_restore(f.read())
  cfg = get_config('small')
  new = jax.tree.map(np.asarray, init_params(cfg, jax.random.PRNGKey(seed)))
  for part in ('g_a', 'g_s', 'h_a'):
    for layer, leaves in raw['params'][part].items() if 'params' in raw else raw[part].items():
      for name, v in leaves.items():
        v = np.asarray(v, np.float32)
        if name == 'beta': v = gdn_convert(v, 1e-6)
        if name == 'gamma': v = gdn_convert(v, 0.0)
        if part == 'g_s' and name == 'kernel': v = np.ascontiguousarray(v[::-1, ::-1])
        assert new[part][layer][name].shape == v.shape, (part, layer, name)
        new[part][layer][name] = v
  return new
if __name__ == '__main__':
  for b in sys.argv[1:]:
    p = migrate(f'/work/runs/old_weights/small-beta{b}.msgpack')
    with open(f'/work/runs/old_weights/small-beta{b}.json') as f:
      meta = json.load(f)
    m = models.Model(f'small-beta{b}', get_config('small'), p, {'beta': float(b), 'migrated_from': meta})
    models.save_model(m, f'/work/runs/migrated/small-beta{b}.msgpack')
    print('saved', b)
