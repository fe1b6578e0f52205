"""A stream decodes to the same pixels in a fresh process with other thread settings."""

import json
import os
import subprocess
import sys

import numpy as np

from iac_jax.adaptation import decoding
from iac_jax.codec import image_codec
from tests.conftest import smooth_image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Pinned to one CPU before JAX and TensorFlow start, the child gets smaller thread
# pools: they are sized by the CPUs the process may run on (measured with jax 0.5.3 on
# 2 CPUs: 5 threads instead of 9). `intra_op_parallelism_threads=1` in XLA_FLAGS, as
# JAX's FAQ suggests, is not an XLA flag and left the count at 9. The child reports
# its CPUs and threads, so the test sees that the setting took.
_DECODE = r'''
import json, os, sys
if sys.argv[4] == 'one-cpu':
  os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
import numpy as np
from iac_jax import load_model
from iac_jax.adaptation import decoding
data = open(sys.argv[1], 'rb').read()
np.save(sys.argv[2], decoding.decode(data, load_model(sys.argv[3])))
status = dict(line.split(':', 1) for line in open('/proc/self/status'))
print(json.dumps({'cpus': len(os.sched_getaffinity(0)), 'threads': int(status['Threads'])}))
'''


def test_fresh_single_threaded_process_decodes_identical_pixels(tiny_model_file, tmp_path):
  from iac_jax import load_model
  model = load_model(tiny_model_file)
  image = smooth_image(100, 140, seed=3)
  data = image_codec.encode_image(model, image)
  here = decoding.decode(data, model)
  (tmp_path / 's.iac').write_bytes(data)
  single = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1',
                XLA_FLAGS='--xla_cpu_multi_thread_eigen=false')
  runs = {'one-cpu': single, 'all-cpus': dict(os.environ, PYTHONPATH=ROOT)}
  children = {name: subprocess.Popen(
      [sys.executable, '-c', _DECODE, str(tmp_path / 's.iac'), str(tmp_path / f'{name}.npy'),
       tiny_model_file, name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=env) for name, env in runs.items()}
  reports = {}
  for name, child in children.items():
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err[-3000:]
    reports[name] = json.loads(out.strip().splitlines()[-1])
    np.testing.assert_array_equal(np.load(tmp_path / f'{name}.npy'), here)
  assert reports['one-cpu']['cpus'] == 1
  if len(os.sched_getaffinity(0)) > 1:  # else there is no other thread count to compare
    assert reports['all-cpus']['cpus'] > 1
    assert reports['one-cpu']['threads'] < reports['all-cpus']['threads'], reports
