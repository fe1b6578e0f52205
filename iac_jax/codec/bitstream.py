"""The iac-jax container: a versioned header and CRC-checked sections. No JAX here.

Layout (integers big-endian):

  magic 'IACJ' | version u8 | kind u8 | reserved u16
  model name (u8 length + ASCII) | model fingerprint (8 bytes)
  config name (u8 length + ASCII) | N u16 | M u16
  frames u32 | height u32 | width u32 | fps numerator u32 | fps denominator u32
  section count u32 | header CRC32 u32 (of all header bytes before it)
  per section: tag (1 ASCII byte) | length u32 | CRC32 u32 of the payload | payload

The file ends exactly after the last section. Every declared size is checked
against hard limits and against the bytes actually present before anything is
allocated from it, and every failure raises `BitstreamError`. The output a stream
declares is not bounded by its bytes (a few dozen bytes of range-coded zeros can
declare a full-size frame), so a decoder also refuses, by default, a stream whose
output exceeds `MAX_OUTPUT_PIXELS`; a caller who wants more says so
(`unpack(..., max_output_pixels=...)`, `iac_jax.decode`, `iac-jax decode
--max_output_pixels`).
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

MAGIC = b'IACJ'
VERSION = 1
KIND_IMAGE = 0
KIND_VIDEO = 1

MAX_SIDE = 16384
MAX_FRAME_PIXELS = 1 << 25  # about 8K UHD
MAX_TOTAL_PIXELS = 1 << 32  # decoded output of a whole stream, uint8 RGB: 12 GiB
# What a decoder allocates for a stream's frames unless told otherwise: 768 MiB of
# uint8 RGB, e.g. 128 I-frames of 1920x1080 (a minute of video at 2 per second).
MAX_OUTPUT_PIXELS = 1 << 28
MAX_FRAMES = 1 << 20
MAX_NAME = 64

_FIXED_1 = struct.Struct('>4sBBH')
_SIZES = struct.Struct('>HHIIIIII')  # N, M, frames, H, W, fps num, fps den, sections
_CRC = struct.Struct('>I')
_SECTION = struct.Struct('>cII')


class BitstreamError(ValueError):
  """The bytes are not a valid iac-jax bitstream (or not for the given model)."""


@dataclasses.dataclass(frozen=True)
class Header:
  """What a decoder must know before reading any section."""

  kind: int
  model_name: str
  model_fingerprint: bytes
  config_name: str
  num_filters: int
  num_latents: int
  frames: int
  height: int
  width: int
  fps_num: int = 0
  fps_den: int = 1


@dataclasses.dataclass(frozen=True)
class Section:
  tag: bytes
  payload: bytes


def _check_name(name: str, what: str) -> bytes:
  raw = name.encode('ascii', errors='strict') if name.isascii() else b''
  if not raw or len(raw) > MAX_NAME or not all(0x21 <= c < 0x7f for c in raw):
    raise BitstreamError(f'{what} must be 1-{MAX_NAME} printable ASCII characters, '
                         f'got {name!r}')
  return raw


def _check_header(h: Header) -> None:
  if h.kind not in (KIND_IMAGE, KIND_VIDEO):
    raise BitstreamError(f'unknown stream kind {h.kind}')
  if len(h.model_fingerprint) != 8:
    raise BitstreamError('model fingerprint must be 8 bytes')
  if not (1 <= h.frames <= MAX_FRAMES):
    raise BitstreamError(f'frame count {h.frames} outside [1, {MAX_FRAMES}]')
  if not (1 <= h.height <= MAX_SIDE and 1 <= h.width <= MAX_SIDE):
    raise BitstreamError(f'frame size {h.width}x{h.height} outside 1..{MAX_SIDE}')
  if h.height * h.width > MAX_FRAME_PIXELS:
    raise BitstreamError(f'frame of {h.width}x{h.height} exceeds {MAX_FRAME_PIXELS} pixels')
  if h.frames * h.height * h.width > MAX_TOTAL_PIXELS:
    raise BitstreamError('stream declares more pixels than a decoder will allocate')
  if not (1 <= h.num_filters <= 4096 and 1 <= h.num_latents <= 4096):
    raise BitstreamError('implausible model widths')
  if h.fps_den == 0:
    raise BitstreamError('frame rate denominator is zero')


def pack(header: Header, sections: list[Section]) -> bytes:
  """Serializes a header and its sections."""
  _check_header(header)
  model = _check_name(header.model_name, 'model name')
  config = _check_name(header.config_name, 'config name')
  out = bytearray(_FIXED_1.pack(MAGIC, VERSION, header.kind, 0))
  out += bytes([len(model)]) + model + header.model_fingerprint
  out += bytes([len(config)]) + config
  out += _SIZES.pack(header.num_filters, header.num_latents, header.frames,
                     header.height, header.width, header.fps_num, header.fps_den,
                     len(sections))
  out += _CRC.pack(zlib.crc32(out))
  for s in sections:
    if len(s.tag) != 1 or len(s.payload) >= 1 << 32:
      raise BitstreamError('bad section')
    out += _SECTION.pack(s.tag, len(s.payload), zlib.crc32(s.payload)) + s.payload
  return bytes(out)


class _Reader:
  def __init__(self, data: bytes):
    self.data = memoryview(data)
    self.pos = 0

  def take(self, n: int, what: str) -> bytes:
    if n < 0 or n > len(self.data) - self.pos:
      raise BitstreamError(f'truncated bitstream: {what} needs {n} bytes, '
                           f'{len(self.data) - self.pos} left')
    chunk = bytes(self.data[self.pos:self.pos + n])
    self.pos += n
    return chunk

  def name(self, what: str) -> str:
    n = self.take(1, what)[0]
    raw = self.take(n, what)
    try:
      text = raw.decode('ascii')
    except UnicodeDecodeError:
      raise BitstreamError(f'{what} is not ASCII') from None
    _check_name(text, what)
    return text


def unpack(data: bytes, max_output_pixels: int | None = MAX_OUTPUT_PIXELS
           ) -> tuple[Header, list[Section]]:
  """Parses and verifies a bitstream; raises BitstreamError on any defect.

  Also raises it, before reading any section, for a stream whose frames hold more
  than `max_output_pixels` pixels in all (None: only the format's MAX_TOTAL_PIXELS,
  for a reader that decodes no frames).
  """
  if not isinstance(data, (bytes, bytearray, memoryview)):
    raise BitstreamError(f'expected bytes, got {type(data).__name__}')
  r = _Reader(data)
  magic, version, kind, _ = _FIXED_1.unpack(r.take(_FIXED_1.size, 'header'))
  if magic != MAGIC:
    raise BitstreamError('not an iac-jax bitstream (bad magic bytes)')
  if version != VERSION:
    raise BitstreamError(f'unsupported format version {version} (this decoder reads '
                         f'version {VERSION})')
  model_name = r.name('model name')
  fingerprint = r.take(8, 'model fingerprint')
  config_name = r.name('config name')
  n, m, frames, height, width, fps_num, fps_den, count = _SIZES.unpack(
      r.take(_SIZES.size, 'header'))
  header_end = r.pos
  (crc,) = _CRC.unpack(r.take(_CRC.size, 'header checksum'))
  if crc != zlib.crc32(bytes(r.data[:header_end])):
    raise BitstreamError('header checksum mismatch (corrupt header)')
  header = Header(kind, model_name, fingerprint, config_name, n, m, frames, height,
                  width, fps_num, fps_den)
  _check_header(header)
  pixels = header.frames * header.height * header.width
  if max_output_pixels is not None and pixels > max_output_pixels:
    raise BitstreamError(
        f'the stream declares {header.frames} frames of {header.width}x{header.height}, '
        f'{pixels} pixels, more than this decoder allocates ({max_output_pixels}); to '
        'decode it, raise the limit (max_output_pixels=, iac-jax decode '
        '--max_output_pixels)')
  if count > (len(r.data) - r.pos) // _SECTION.size:
    raise BitstreamError(f'{count} sections declared, too few bytes for their headers')
  sections = []
  for i in range(count):
    tag, length, crc = _SECTION.unpack(r.take(_SECTION.size, f'section {i} header'))
    payload = r.take(length, f'section {i}')
    if zlib.crc32(payload) != crc:
      raise BitstreamError(f'section {i} checksum mismatch (corrupt data)')
    sections.append(Section(tag, payload))
  if r.pos != len(r.data):
    raise BitstreamError(f'{len(r.data) - r.pos} unexpected bytes after the last section')
  return header, sections


def section_sizes(data: bytes, sections: list[Section]) -> dict:
  """Header bytes and per-section payload bytes of an unpacked stream, for `iac-jax info`."""
  payload = sum(len(s.payload) for s in sections)
  return {'header_bytes': len(data) - payload - _SECTION.size * len(sections),
          'section_header_bytes': _SECTION.size * len(sections),
          'sections': [{'tag': s.tag.decode('ascii', 'replace'), 'bytes': len(s.payload)}
                       for s in sections]}
