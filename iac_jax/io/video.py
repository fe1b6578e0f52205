"""Video input and output: y4m (8-bit 4:2:0 / 4:4:4) and, through PyAV, mp4/mkv/mov.

Colour: every conversion uses BT.601 with limited ("studio") range,

  R = 1.164 (Y - 16)                 + 1.596 (Cr - 128)
  G = 1.164 (Y - 16) - 0.392 (Cb - 128) - 0.813 (Cr - 128)
  B = 1.164 (Y - 16) + 2.017 (Cb - 128)

and its exact inverse, whatever the file's colour tags say (the test clips are
BT.601 limited range). 4:2:0 chroma is upsampled by sample repetition; output y4m is
4:4:4 so that writing adds no chroma subsampling loss.

I-frames: a video at `fps` frames per second is sampled at `iframe_fps` (2 by
default, as in the paper): frame indices round(k * fps / iframe_fps). The readers
keep only those while reading, so a long video costs the memory of its I-frames.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterator

import numpy as np

from iac_jax.io import atomic_io

_FORWARD = np.array([[0.299, 0.587, 0.114],
                     [-0.168736, -0.331264, 0.5],
                     [0.5, -0.418688, -0.081312]])
_MAX_SIDE = 16384
VIDEO_EXTENSIONS = ('.y4m', '.mp4', '.mkv', '.mov', '.avi', '.webm')


class VideoError(ValueError):
  """A video that cannot be read (missing, unsupported format, corrupt)."""


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Full-resolution uint8 planes (limited range BT.601) -> uint8[H, W, 3]."""
  yf = (y.astype(np.float64) - 16.0) * (255.0 / 219.0)
  uf = (u.astype(np.float64) - 128.0) * (255.0 / 224.0)
  vf = (v.astype(np.float64) - 128.0) * (255.0 / 224.0)
  ycc = np.stack([yf, uf, vf], axis=-1)
  rgb = ycc @ np.linalg.inv(_FORWARD).T
  return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def rgb_to_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """uint8[H, W, 3] -> limited-range BT.601 uint8 planes Y, Cb, Cr (4:4:4)."""
  ycc = rgb.astype(np.float64) @ _FORWARD.T
  y = ycc[..., 0] * (219.0 / 255.0) + 16.0
  u = ycc[..., 1] * (224.0 / 255.0) + 128.0
  v = ycc[..., 2] * (224.0 / 255.0) + 128.0
  return tuple(np.clip(np.round(p), 0, 255).astype(np.uint8) for p in (y, u, v))


def _iframe_stream(fps: float, iframe_fps: float | None) -> Iterator[int]:
  """The increasing indices of the frames sampled at `iframe_fps` from a video at
  `fps`, without end (every index when `iframe_fps` is None)."""
  if iframe_fps is None:
    return itertools.count()
  if fps <= 0 or iframe_fps <= 0:
    raise VideoError(f'invalid frame rates: video {fps}, I-frames {iframe_fps}')
  step = max(fps / iframe_fps, 1.0)  # > 1 apart, so the rounded indices increase
  return (round(k * step) for k in itertools.count())


def iframe_indices(num_frames: int, fps: float, iframe_fps: float = 2.0) -> list[int]:
  """Indices of the frames sampled at `iframe_fps` from a video at `fps`."""
  return list(itertools.takewhile(lambda i: i < num_frames, _iframe_stream(fps, iframe_fps)))


class _Sampler:
  """Keeps, of the frames seen one at a time, those at the I-frame indices."""

  def __init__(self, fps: float, iframe_fps: float | None):
    self._wanted = _iframe_stream(fps, iframe_fps)
    self._next = next(self._wanted)
    self.seen = 0

  def wants_next(self) -> bool:
    """Whether the next frame is an I-frame; call once per frame, in order."""
    keep = self.seen == self._next
    if keep:
      self._next = next(self._wanted)
    self.seen += 1
    return keep


def upsample_chroma(plane: np.ndarray, h: int, w: int) -> np.ndarray:
  """A 4:2:0 chroma plane at full resolution [h, w], by sample repetition."""
  return np.repeat(np.repeat(plane, 2, axis=0), 2, axis=1)[:h, :w]


def _parse_y4m_header(line: bytes) -> dict:
  tokens = line.decode('ascii', errors='replace').split()
  if not tokens or tokens[0] != 'YUV4MPEG2':
    raise VideoError('not a YUV4MPEG2 file')
  fields = {t[0]: t[1:] for t in tokens[1:]}
  try:
    w, h = int(fields['W']), int(fields['H'])
    num, den = (int(x) for x in fields.get('F', '25:1').split(':'))
  except (KeyError, ValueError):
    raise VideoError(f'bad y4m header: {line!r}') from None
  if not (1 <= w <= _MAX_SIDE and 1 <= h <= _MAX_SIDE) or num <= 0 or den <= 0:
    raise VideoError(f'bad y4m size or rate: {line!r}')
  chroma = fields.get('C', '420jpeg')
  if chroma in ('420', '420jpeg', '420paldv', '420mpeg2'):
    chroma = '420'
  elif chroma != '444':
    raise VideoError(f'unsupported y4m colour space C{chroma}: only 8-bit 4:2:0 and '
                     '4:4:4 are read (convert with ffmpeg -pix_fmt yuv420p)')
  return {'width': w, 'height': h, 'fps': num / den, 'chroma': chroma}


def read_y4m(path: str, iframe_fps: float | None = 2.0) -> tuple[np.ndarray, float]:
  """Reads the I-frames (all frames if iframe_fps is None) of a y4m file."""
  with open(path, 'rb') as f:
    header = _parse_y4m_header(f.readline(256))
    w, h = header['width'], header['height']
    if header['chroma'] == '420':
      cw, ch = (w + 1) // 2, (h + 1) // 2
    else:
      cw, ch = w, h
    frame_bytes = w * h + 2 * cw * ch
    body_start = f.tell()
    size = os.path.getsize(path) - body_start
    sampler = _Sampler(header['fps'], iframe_fps)
    frames = []  # only the I-frames, as RGB: the others are read and dropped
    while True:
      marker = f.readline(1024)
      if not marker:
        break
      if not marker.startswith(b'FRAME'):
        raise VideoError(f'corrupt y4m file {path}: expected FRAME')
      data = f.read(frame_bytes)
      if len(data) != frame_bytes:
        raise VideoError(f'truncated y4m file {path}')
      if sampler.seen >= size // max(frame_bytes, 1) + 1:
        raise VideoError(f'corrupt y4m file {path}')
      if sampler.wants_next():
        buf = np.frombuffer(data, np.uint8)
        y = buf[:w * h].reshape(h, w)
        u = buf[w * h:w * h + cw * ch].reshape(ch, cw)
        v = buf[w * h + cw * ch:].reshape(ch, cw)
        if header['chroma'] == '420':
          u, v = upsample_chroma(u, h, w), upsample_chroma(v, h, w)
        frames.append(yuv_to_rgb(y, u, v))
  if not frames:
    raise VideoError(f'video {path} has no frames')
  return np.stack(frames), header['fps']


def read_av(path: str, iframe_fps: float | None = 2.0) -> tuple[np.ndarray, float]:
  """Reads the I-frames of an mp4/mkv/mov file through PyAV (8-bit 4:2:0 only)."""
  try:
    import av  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise VideoError('reading mp4/mkv needs PyAV: pip install "iac-jax[video]"') from None
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise VideoError(f'{path} has no video stream')
      stream = container.streams.video[0]
      fps = float(stream.average_rate or stream.guessed_rate or 0)
      if fps <= 0:
        raise VideoError(f'video {path} has no frame rate')
      sampler = _Sampler(fps, iframe_fps)
      frames = []  # only the I-frames, as RGB: the others are decoded and dropped
      for frame in container.decode(stream):
        if frame.format.name != 'yuv420p':
          raise VideoError(f'unsupported pixel format {frame.format.name} in {path}: only '
                           '8-bit yuv420p is read')
        if sampler.wants_next():
          p = frame.to_ndarray()  # [H * 3/2, W]
          h, w = p.shape[0] * 2 // 3, p.shape[1]
          u = p[h:h + h // 4].reshape(h // 2, w // 2)
          v = p[h + h // 4:].reshape(h // 2, w // 2)
          frames.append(yuv_to_rgb(p[:h], upsample_chroma(u, h, w),
                                   upsample_chroma(v, h, w)))
  except av.error.FFmpegError as e:
    raise VideoError(f'cannot read video {path}: {e}') from None
  if not frames:
    raise VideoError(f'video {path} has no frames')
  return np.stack(frames), fps


def read_video(path: str, iframe_fps: float | None = 2.0) -> tuple[np.ndarray, float]:
  """(uint8[T, H, W, 3] RGB I-frames, the video's frame rate)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'input file not found: {path}')
  if is_video_path(path) and os.path.isfile(path) and not os.path.getsize(path):
    raise VideoError(f'video {path} is empty (0 bytes)')
  if path.lower().endswith('.y4m'):
    return read_y4m(path, iframe_fps)
  if path.lower().endswith(VIDEO_EXTENSIONS):
    return read_av(path, iframe_fps)
  raise VideoError(f'unsupported video file {path}; use one of {VIDEO_EXTENSIONS}')


def is_video_path(path: str) -> bool:
  return path.lower().endswith(VIDEO_EXTENSIONS)


def write_y4m(path: str, frames: np.ndarray, fps: float) -> None:
  """Writes uint8[T, H, W, 3] RGB as 8-bit 4:4:4 y4m, atomically."""
  from fractions import Fraction  # pylint: disable=g-import-not-at-top
  rate = Fraction(fps).limit_denominator(1001000)
  _, h, w, _ = frames.shape
  buf = io.BytesIO()
  buf.write(f'YUV4MPEG2 W{w} H{h} F{rate.numerator}:{rate.denominator} Ip A1:1 '
            'C444\n'.encode())
  for frame in frames:
    buf.write(b'FRAME\n')
    for plane in rgb_to_yuv(frame):
      buf.write(plane.tobytes())
  atomic_io.write_bytes(path, buf.getvalue())


