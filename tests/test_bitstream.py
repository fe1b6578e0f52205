import struct
import time
import zlib

import numpy as np
import pytest

import iac_jax
from iac_jax import bitstream
from iac_jax.bitstream import BitstreamError, Header, Section
from tests.conftest import smooth_image

HEADER = Header(kind=bitstream.KIND_IMAGE, model_name='m', model_fingerprint=b'12345678',
                config_name='tiny', num_filters=8, num_latents=12, frames=1, height=10,
                width=20)


def test_pack_unpack_round_trip():
  sections = [Section(b'Z', b'abc'), Section(b'Y', b''), Section(b'Y', bytes(range(256)))]
  header, got = bitstream.unpack(bitstream.pack(HEADER, sections))
  assert header == HEADER and got == sections


def _with_sizes(**changes) -> bytes:
  """A stream whose header declares other sizes, with a valid header checksum."""
  data = bytearray(bitstream.pack(HEADER, [Section(b'Z', b'x')]))
  offset = 8 + 1 + 1 + 8 + 1 + 4  # fixed part, 'm', fingerprint, 'tiny'
  n, m, f, h, w, fn, fd, c = struct.unpack_from('>HHIIIIII', data, offset)
  values = {'n': n, 'm': m, 'f': f, 'h': h, 'w': w, 'fn': fn, 'fd': fd, 'c': c}
  values.update(changes)
  struct.pack_into('>HHIIIIII', data, offset, *values.values())
  end = offset + 28
  struct.pack_into('>I', data, end, zlib.crc32(bytes(data[:end])))
  return bytes(data)


@pytest.mark.parametrize('changes', [{'h': 2**31}, {'w': 0}, {'f': 0},
                                     {'h': 16384, 'w': 16384}, {'c': 2**32 - 1},
                                     {'f': 2**20, 'h': 8192, 'w': 4096}, {'fd': 0}])
def test_huge_or_invalid_declared_sizes_are_rejected(changes):
  with pytest.raises(BitstreamError):
    bitstream.unpack(_with_sizes(**changes))


def test_wrong_magic_and_version():
  data = bitstream.pack(HEADER, [])
  with pytest.raises(BitstreamError, match='magic'):
    bitstream.unpack(b'XXXX' + data[4:])
  with pytest.raises(BitstreamError, match='version'):
    bitstream.unpack(data[:4] + bytes([99]) + data[5:])


def test_non_bytes_input():
  with pytest.raises(BitstreamError):
    bitstream.unpack('not bytes')


@pytest.fixture(scope='module')
def real_stream(tiny_model):
  return iac_jax.encode_image(tiny_model, smooth_image(70, 130, seed=1))


def _assert_rejected(data, model):
  start = time.monotonic()
  with pytest.raises(BitstreamError):
    iac_jax.decode(data, model)
  assert time.monotonic() - start < 30


def test_every_truncation_is_rejected(real_stream, tiny_model):
  for n in range(len(real_stream)):
    _assert_rejected(real_stream[:n], tiny_model)


def test_every_single_bit_flip_is_rejected(real_stream, tiny_model):
  for byte in range(len(real_stream)):
    for bit in (0, 3, 7):
      data = bytearray(real_stream)
      data[byte] ^= 1 << bit
      _assert_rejected(bytes(data), tiny_model)


def test_appended_and_random_bytes_are_rejected(real_stream, tiny_model):
  _assert_rejected(real_stream + b'\0', tiny_model)
  rng = np.random.default_rng(0)
  for n in [0, 1, 4, 10, 50, 200, 1000]:
    _assert_rejected(rng.integers(0, 256, n, dtype=np.uint8).tobytes(), tiny_model)
    _assert_rejected(b'IACJ\x01' + rng.integers(0, 256, n, dtype=np.uint8).tobytes(),
                     tiny_model)


def test_section_with_valid_checksum_but_garbage_payload(real_stream, tiny_model):
  header, sections = bitstream.unpack(real_stream)
  for i in range(len(sections)):
    bad = list(sections)
    bad[i] = Section(sections[i].tag, sections[i].payload + b'\xff\x00\xff')
    try:
      out = iac_jax.decode(bitstream.pack(header, bad), tiny_model)
    except BitstreamError:
      continue
    # The range coder cannot always tell; then the output is still well-formed.
    assert out.shape == (1, 70, 130, 3)
  with pytest.raises(BitstreamError, match='sections'):
    iac_jax.decode(bitstream.pack(header, sections[:1]), tiny_model)
  with pytest.raises(BitstreamError, match='z section'):
    iac_jax.decode(bitstream.pack(header, sections[::-1]), tiny_model)
