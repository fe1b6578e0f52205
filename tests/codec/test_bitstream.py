import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest

import iac_jax
from iac_jax import stream_info
from iac_jax.codec import bitstream, image_codec
from iac_jax.codec.bitstream import BitstreamError, Header, Section
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


@pytest.mark.parametrize('changes, message', [
    ({'h': 2**31}, 'frame size'), ({'w': 0}, 'frame size'), ({'f': 0}, 'frame count'),
    ({'h': 16384, 'w': 16384}, 'exceeds 33554432 pixels'),
    ({'c': 2**32 - 1}, 'sections declared, too few bytes'),
    ({'f': 2**20, 'h': 8192, 'w': 4096}, 'more pixels than a decoder will allocate'),
    ({'fd': 0}, 'denominator is zero')])
def test_huge_or_invalid_declared_sizes_are_rejected(changes, message):
  with pytest.raises(BitstreamError, match=message):
    bitstream.unpack(_with_sizes(**changes))


def test_a_small_stream_declaring_a_huge_output_is_refused_before_allocating(tiny_model):
  # 9 frames of 16384x2048 (2^25 pixels each, the most a frame may have): 302 Mpixels,
  # 906 MiB of output, declared by a stream of a few hundred bytes.
  frames, height, width = 9, 2048, 16384
  header = image_codec.stream_header(tiny_model, bitstream.KIND_VIDEO, frames, height, width)
  data = bitstream.pack(header, [Section(b'U', b'')] +
                        [Section(b'Z', b'\0'), Section(b'Y', b'\0')] * frames)
  assert len(data) < 300 and frames * height * width > bitstream.MAX_OUTPUT_PIXELS
  tracemalloc.start()
  try:
    with pytest.raises(BitstreamError, match=r'9 frames of 16384x2048, 301989888 pixels, '
                       r'more than this decoder allocates \(268435456\)'):
      iac_jax.decode(data, tiny_model)
    _, peak_bytes = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert peak_bytes < 1 << 20
  # The caller may raise the limit; readers that decode no frames do not apply it.
  assert bitstream.unpack(data, max_output_pixels=frames * height * width)[0] == header
  assert stream_info.describe(data)['frames'] == frames


def test_the_output_limit_is_the_callers_to_set(real_stream, tiny_model):
  pixels = 70 * 130
  with pytest.raises(BitstreamError, match=f'{pixels} pixels, more than this decoder '
                     f'allocates \\({pixels - 1}\\)'):
    iac_jax.decode(real_stream, tiny_model, max_output_pixels=pixels - 1)
  assert iac_jax.decode(real_stream, tiny_model, max_output_pixels=pixels).shape == (
      1, 70, 130, 3)


def test_wrong_magic_and_version():
  data = bitstream.pack(HEADER, [])
  with pytest.raises(BitstreamError, match='magic'):
    bitstream.unpack(b'XXXX' + data[4:])
  with pytest.raises(BitstreamError, match='version'):
    bitstream.unpack(data[:4] + bytes([99]) + data[5:])


def test_non_bytes_input():
  with pytest.raises(BitstreamError, match='expected bytes, got str'):
    bitstream.unpack('not bytes')


@pytest.fixture(scope='module')
def real_stream(tiny_model):
  return iac_jax.encode_image(tiny_model, smooth_image(70, 130, seed=1))


def _assert_rejected(data, model):
  start = time.monotonic()
  with pytest.raises(BitstreamError):  # of whatever kind: each mutant breaks another rule
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
