import numpy as np
import pytest

from iac_jax.codec import range_coding
from iac_jax.codec.entropy_models import gaussian
from iac_jax.codec.entropy_models.tables import tables_from_pmfs


def test_round_trip_with_escape_codes():
  tables = gaussian.gaussian_tables()
  rng = np.random.default_rng(0)
  idx = rng.integers(0, gaussian.NUM_SCALES, (3, 9, 10)).astype(np.int32)
  values = np.round(rng.normal(size=idx.shape) * gaussian.scale_table()[idx]).astype(np.int64)
  values[0, 0, :4] = [10**6, -10**6, 5000, -3]  # far outside their tables
  data = range_coding.encode(values, idx, tables)
  np.testing.assert_array_equal(range_coding.decode(data, idx, tables), values)


def test_coded_size_matches_the_ideal_code_length():
  pmf = np.array([0.7, 0.2, 0.1])
  tables = tables_from_pmfs([pmf], [0])
  rng = np.random.default_rng(1)
  values = rng.choice(3, size=20000, p=pmf)
  data = range_coding.encode(values, np.zeros_like(values, np.int32), tables)
  ideal_bits = -np.sum(np.log2(pmf[values]))
  assert abs(8 * len(data) - ideal_bits) < 0.01 * ideal_bits + 64


def test_garbage_bytes_decode_or_raise_range_coding_error():
  tables = gaussian.gaussian_tables()
  idx = np.full((4, 50), 5, np.int32)
  rng = np.random.default_rng(2)
  raised = 0
  for n in [0, 1, 2, 3, 7, 64, 300]:
    for _ in range(5):
      data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
      try:
        out = range_coding.decode(data, idx, tables)
      except range_coding.RangeCodingError:
        raised += 1
        continue
      assert out.shape == idx.shape
  assert raised > 0  # the coder does notice some malformed streams itself


def test_empty_input():
  tables = tables_from_pmfs([np.array([1.0])], [0])
  empty = np.zeros((0, 3), np.int32)
  assert range_coding.encode(empty, empty, tables) == b''
  assert range_coding.decode(b'', empty, tables).shape == (0, 3)


def test_bad_index_is_rejected():
  tables = tables_from_pmfs([np.array([1.0])], [0])
  with pytest.raises(ValueError, match='table index out of range'):
    range_coding.encode(np.zeros(2, np.int64), np.array([0, 1], np.int32), tables)


_CODE_THEN_IMPORT = '''
import sys
import numpy as np
from iac_jax.codec import range_coding
from iac_jax.codec.entropy_models import gaussian
tables = gaussian.gaussian_tables()
idx = np.arange(12, dtype=np.int32) % gaussian.NUM_SCALES
values = np.arange(12) - 6
if sys.argv[1] == 'tf-first':
  import tensorflow
data = range_coding.encode(values, idx, tables)
assert (range_coding.decode(data, idx, tables) == values).all()
api = sorted({m.split('.')[0] if m.startswith('keras') else 'tensorflow._api'
              for m in sys.modules if m.startswith(('keras', 'tensorflow._api'))})
import tensorflow as tf  # a user's own TensorFlow still imports, complete
print(data.hex(), ','.join(api), int(tf.reduce_sum(tf.constant([2, 3]))))
'''


def test_the_coder_loads_without_tensorflows_api_and_leaves_it_importable():
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  run = lambda mode: subprocess.run([sys.executable, '-c', _CODE_THEN_IMPORT, mode],
                                    capture_output=True, text=True, check=True).stdout.split()
  alone, after_tf = run('alone'), run('tf-first')
  assert alone[1:] == ['5'] and alone[0]  # neither TensorFlow's API nor Keras was loaded
  assert 'tensorflow._api' in after_tf[1] and after_tf[2] == '5'
  assert alone[0] == after_tf[0]  # the same bytes either way
