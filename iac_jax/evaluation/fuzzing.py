"""A fuzz harness for the container and the whole decoder.

`mutants(data, rng)` derives hostile variants of a valid bitstream: random bytes,
bit flips, truncations at every section boundary and at random points, extended
section lengths, huge declared sizes and wrong model identifiers (with the header
checksum recomputed so that the checks behind it are reached), and payloads
mutated with their checksums recomputed (so that the range decoder and the update
decoder see garbage). `run` decodes each and classifies the outcome; anything other
than `BitstreamError` or a well-formed decode is a failure.
"""

from __future__ import annotations

import collections
import dataclasses
import struct
import time
import zlib
from collections.abc import Callable, Iterator

import numpy as np

from iac_jax.adaptation import decoding
from iac_jax.codec import bitstream
from iac_jax.codec.models import Model

# Mutants that may still decode: every checksum holds, so garbage latents decode to
# garbage pixels, and a smaller declared size with the same padded size is a valid
# stream of a cropped image.
_MAY_DECODE = ('payload', 'payload-length', 'huge-size')


def _header_layout(data: bytes) -> tuple[int, int]:
  """(offset of the sizes struct, offset of the header CRC) of a valid stream."""
  header, _ = bitstream.unpack(data)
  sizes = (bitstream._FIXED_1.size + 1 + len(header.model_name) + 8 + 1  # pylint: disable=protected-access
           + len(header.config_name))
  return sizes, sizes + bitstream._SIZES.size  # pylint: disable=protected-access


def _with_header_crc(buf: bytearray, crc_at: int) -> bytes:
  buf[crc_at:crc_at + 4] = struct.pack('>I', zlib.crc32(bytes(buf[:crc_at])))
  return bytes(buf)


def _section_offsets(data: bytes, crc_at: int, count: int) -> list[int]:
  offsets, pos = [], crc_at + 4
  for _ in range(count):
    offsets.append(pos)
    (length,) = struct.unpack_from('>I', data, pos + 1)
    pos += 9 + length
  return offsets + [pos]


def mutants(data: bytes, rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
  """Endless (kind, bytes) hostile variants of the valid stream `data`."""
  header, sections = bitstream.unpack(data)
  sizes_at, crc_at = _header_layout(data)
  boundaries = _section_offsets(data, crc_at, len(sections))
  cuts = sorted({0, sizes_at, crc_at, *boundaries, *(b + 9 for b in boundaries[:-1])})
  kinds = ('random', 'bitflip', 'truncate', 'extend-length', 'huge-size',
           'model-fingerprint', 'model-name', 'payload', 'payload-length')
  while True:
    kind = kinds[rng.integers(len(kinds))]
    buf = bytearray(data)
    if kind == 'random':
      out = rng.bytes(int(rng.integers(0, 2 * len(data) + 1)))
      if rng.random() < 0.5:  # keep the magic so the parser goes further
        out = bitstream.MAGIC + bytes([bitstream.VERSION]) + out
    elif kind == 'bitflip':
      for _ in range(int(rng.integers(1, 9))):
        i = int(rng.integers(len(buf)))
        buf[i] ^= 1 << int(rng.integers(8))
      out = bytes(buf)
    elif kind == 'truncate':
      at = cuts[rng.integers(len(cuts))] if rng.random() < 0.5 else rng.integers(len(data))
      out = data[:int(at)]
    elif kind == 'extend-length':
      at = boundaries[rng.integers(len(sections))] + 1
      (length,) = struct.unpack_from('>I', data, at)
      struct.pack_into('>I', buf, at, min(length + int(rng.integers(1, 1 << 31)), 2**32 - 1))
      out = bytes(buf)
    elif kind == 'huge-size':
      field = int(rng.integers(2, 5))  # frames, height, width
      struct.pack_into('>I', buf, sizes_at + 4 + 4 * (field - 2),
                       int(rng.choice([0, 1 << 14, 1 << 16, 2**32 - 1,
                                       int(rng.integers(1, 1 << 15))])))
      out = _with_header_crc(buf, crc_at)
    elif kind == 'model-fingerprint':
      at = bitstream._FIXED_1.size + 1 + len(header.model_name)  # pylint: disable=protected-access
      buf[at + int(rng.integers(8))] ^= 1 << int(rng.integers(8))
      out = _with_header_crc(buf, crc_at)
    elif kind == 'model-name':
      buf[bitstream._FIXED_1.size + 1] = ord('#')  # pylint: disable=protected-access
      out = _with_header_crc(buf, crc_at)
    else:
      i = int(rng.integers(len(sections)))
      payload = bytearray(sections[i].payload)
      if kind == 'payload' and payload:
        for _ in range(int(rng.integers(1, 9))):
          j = int(rng.integers(len(payload)))
          payload[j] = int(rng.integers(256))
      else:
        keep = int(rng.integers(0, len(payload) + 1))
        payload = payload[:keep] + bytearray(rng.bytes(int(rng.integers(0, 16))))
      changed = list(sections)
      changed[i] = dataclasses.replace(sections[i], payload=bytes(payload))
      out = bitstream.pack(header, changed)
    yield kind, out


def run(data: bytes, model: Model, cases: int, seed: int = 0,
        time_bound_s: float = 10.0,
        progress: Callable[[int], None] | None = None) -> collections.Counter:
  """Decodes `cases` mutants of `data`; returns outcome counts per (kind, outcome).

  `progress(cases_done)` is called after every 1,000 cases.

  Raises AssertionError on any exception other than BitstreamError, on a decode
  that returns frames of the wrong shape or type or from bytes that should have
  been refused, and on a case slower than `time_bound_s`.
  """
  rng = np.random.default_rng(seed)
  counts: collections.Counter = collections.Counter()
  stream = mutants(data, rng)
  for _ in range(cases):
    kind, mutant = next(stream)
    start = time.perf_counter()
    try:
      # A stream naming another model is decoded as a user would: by its name.
      frames = decoding.decode(mutant, None if kind == 'model-name' else model)
      outcome = 'decoded'
    except bitstream.BitstreamError:
      outcome = 'BitstreamError'
    except Exception as e:  # anything else is what the harness looks for
      raise AssertionError(f'{kind}: {type(e).__name__}: {e}') from e
    seconds = time.perf_counter() - start
    if seconds > time_bound_s:
      raise AssertionError(f'{kind}: took {seconds:.1f} s')
    if outcome == 'decoded':
      if mutant != data and kind not in _MAY_DECODE:
        raise AssertionError(f'{kind}: a corrupted stream decoded without error')
      declared, _ = bitstream.unpack(mutant)
      expected = (declared.frames, declared.height, declared.width, 3)
      if frames.dtype != np.uint8 or frames.shape != expected:
        raise AssertionError(f'{kind}: decoded {frames.dtype}{frames.shape}')
    counts[(kind, outcome)] += 1
    done = sum(counts.values())
    if progress is not None and done % 1000 == 0:
      progress(done)
  return counts
