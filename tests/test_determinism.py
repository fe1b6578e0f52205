"""A stream decodes to the same pixels in a fresh process with other thread settings."""

import os
import subprocess
import sys

import numpy as np

from iac_jax import codec
from tests.conftest import smooth_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_DECODE = r'''
import sys, numpy as np
from iac_jax import codec, load_model
data = open(sys.argv[1], 'rb').read()
np.save(sys.argv[2], codec.decode(data, load_model(sys.argv[3])))
'''


def test_fresh_single_threaded_process_decodes_identical_pixels(tiny_model_file, tmp_path):
  from iac_jax import load_model
  model = load_model(tiny_model_file)
  image = smooth_image(100, 140, seed=3)
  data = codec.encode_image(model, image)
  here = codec.decode(data, model)
  (tmp_path / 's.iac').write_bytes(data)
  env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1',
             XLA_FLAGS='--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1')
  proc = subprocess.run([sys.executable, '-c', _DECODE, str(tmp_path / 's.iac'),
                         str(tmp_path / 'out.npy'), tiny_model_file],
                        check=False, capture_output=True, text=True, timeout=300, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  np.testing.assert_array_equal(np.load(tmp_path / 'out.npy'), here)
