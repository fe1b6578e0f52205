"""Classical codecs as reference points: JPEG and WebP (Pillow), x264 and x265 intra (PyAV).

JPEG and WebP run at a quality setting on an RGB uint8 image; the rate is the size
of the file Pillow writes and the distortion is measured on the decoded RGB image,
so each codec's own colour conversion and chroma subsampling count against it.
Pillow's defaults are kept otherwise (JPEG with 4:2:0 chroma, WebP lossy, method 4).

x264 and x265 code a stack of frames (the I-frames of a video) as one intra-only
stream (every frame a key frame, so each frame stands alone like ours) at a fixed
QP, preset `medium`, tuned for PSNR. Frames go in as 8-bit 4:2:0 converted with
`video.rgb_to_yuv` (BT.601 limited range, chroma 2x2 averaged) and come back to RGB
with `video.yuv_to_rgb`, so the rate is every byte of the raw stream that decodes
(parameter sets and slice headers included; the encoders' informational SEI with
their settings string, 0.7-2.2 kB that no decoder needs, is left out: x265 with
`info=0`, x264's removed from the stream before decoding) and the distortion is
measured in RGB after the codec's YUV round trip.
"""

from __future__ import annotations

import fractions
import io

import numpy as np
from PIL import Image

from iac_jax.evaluation import metrics
from iac_jax.io import video

FORMATS = ('jpeg', 'webp')
# From 0, each format's smallest file, so that a learned point at a low rate falls inside
# the curve or plainly below all of it (Pillow's JPEG gives the same file at 0-2).
DEFAULT_QUALITIES = (0, 1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
VIDEO_CODECS = ('x264', 'x265')
DEFAULT_QPS = (22, 27, 32, 37, 42, 47)
_AV_CODEC = {'x264': 'libx264', 'x265': 'libx265'}


def compress(image: np.ndarray, fmt: str, quality: int) -> tuple[bytes, np.ndarray]:
  """The file bytes and the decoded uint8[H, W, 3] of `image` in `fmt` at `quality`."""
  if fmt not in FORMATS:
    raise ValueError(f'unknown format {fmt!r}; known: {FORMATS}')
  if not 0 <= quality <= 100:
    raise ValueError(f'quality must be in 0..100, got {quality}')
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format=fmt.upper(),
                                                     quality=int(quality))
  data = buffer.getvalue()
  with Image.open(io.BytesIO(data)) as decoded:
    return data, np.asarray(decoded.convert('RGB'))


def rd_point(image: np.ndarray, fmt: str, quality: int) -> dict:
  """bpp and PSNR of one image in one format at one quality."""
  data, decoded = compress(image, fmt, quality)
  h, w = image.shape[:2]
  return {'codec': fmt, 'setting': f'q{quality}', 'bpp': metrics.bpp(len(data), h * w),
          'psnr_db': metrics.psnr_db(image, decoded)}


def psnr_at_rate(bpps, psnrs, bpp: float) -> float:
  """PSNR of an RD curve at `bpp`, linear in bpp between measured points; NaN outside."""
  order = np.argsort(bpps)
  x, y = np.asarray(bpps, float)[order], np.asarray(psnrs, float)[order]
  if len(x) == 0 or bpp < x[0] or bpp > x[-1]:
    return float('nan')
  return float(np.interp(bpp, x, y))


def smallest_file(bpps, psnrs) -> tuple[float, float]:
  """(bpp, PSNR) of an RD curve's point at the lowest rate: where a learned point below
  the curve's range is compared (the format cannot make a file that small)."""
  i = int(np.argmin(bpps))
  return float(bpps[i]), float(psnrs[i])


def _to_yuv420(frame: np.ndarray) -> np.ndarray:
  """uint8[H, W, 3] RGB (even H, W) -> one yuv420p plane stack uint8[3H/2, W]."""
  y, u, v = video.rgb_to_yuv(frame)
  h, w = y.shape
  def half(p):
    return np.round(p.reshape(h // 2, 2, w // 2, 2).astype(np.float64).mean(axis=(1, 3)))
  chroma = np.concatenate([half(u).ravel(), half(v).ravel()]).astype(np.uint8)
  return np.concatenate([y, chroma.reshape(-1, w)])  # PyAV's yuv420p layout


def _from_yuv420(planes: np.ndarray, h: int, w: int) -> np.ndarray:
  chroma = planes[h:].ravel()
  n = (h // 2) * (w // 2)
  u, v = chroma[:n].reshape(h // 2, w // 2), chroma[n:2 * n].reshape(h // 2, w // 2)
  return video.yuv_to_rgb(planes[:h], video.upsample_chroma(u, h, w),
                          video.upsample_chroma(v, h, w))


def _split_annex_b(data: bytes) -> list[bytes]:
  """NAL units of an Annex B stream, each with its start code."""
  starts = []
  i = data.find(b'\x00\x00\x01')
  while i >= 0:
    starts.append(i - 1 if i > 0 and data[i - 1] == 0 else i)
    i = data.find(b'\x00\x00\x01', i + 3)
  return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]


def _drop_x264_info(packet: bytes) -> bytes:
  """The packet without x264's user-data SEI (NAL type 6 holding its settings string)."""
  def is_info(nal):
    body = nal.lstrip(b'\x00')[1:]
    return body and body[0] & 0x1F == 6 and b'x264 - core' in body
  return b''.join(n for n in _split_annex_b(packet) if not is_info(n))


def compress_intra(frames: np.ndarray, codec: str, qp: int) -> tuple[bytes, np.ndarray]:
  """Codes uint8[T, H, W, 3] frames as an intra-only x264/x265 stream at QP `qp`.

  Returns the raw stream (Annex B) and the decoded uint8[T, H, W, 3] RGB frames.
  Odd sizes are padded by edge replication for 4:2:0 and cropped after decoding.
  """
  try:
    import av  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise RuntimeError('x264/x265 need PyAV: pip install "iac-jax[video]"') from None
  if codec not in VIDEO_CODECS:
    raise ValueError(f'unknown codec {codec!r}; known: {VIDEO_CODECS}')
  if not 0 <= qp <= 51:
    raise ValueError(f'QP must be in 0..51, got {qp}')
  frames = np.asarray(frames, np.uint8)
  if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
    raise ValueError(f'need uint8[T, H, W, 3] frames, got shape {frames.shape}')
  t, h, w, _ = frames.shape
  padded = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode='edge')
  ph, pw = padded.shape[1:3]
  enc = av.CodecContext.create(_AV_CODEC[codec], 'w')
  enc.width, enc.height, enc.pix_fmt = pw, ph, 'yuv420p'
  enc.time_base = fractions.Fraction(1, 25)
  enc.gop_size = 1
  # Encoder settings go through x264-params / x265-params: PyAV ignores unknown options.
  if codec == 'x264':
    enc.options = {'preset': 'medium', 'tune': 'psnr', 'threads': '1',
                   'x264-params': f'qp={qp}:keyint=1:min-keyint=1:scenecut=0'}
  else:
    enc.options = {'preset': 'medium', 'tune': 'psnr', 'threads': '1',
                   'x265-params': f'qp={qp}:keyint=1:info=0:log-level=error:pools=1:'
                                  'frame-threads=1'}
  packets = []
  for i, frame in enumerate(padded):
    vf = av.VideoFrame.from_ndarray(_to_yuv420(frame), format='yuv420p')
    vf.pts = i
    packets.extend(enc.encode(vf))
  packets.extend(enc.encode(None))
  chunks = [bytes(p) for p in packets]
  if codec == 'x264':
    chunks = [_drop_x264_info(c) for c in chunks]
  data = b''.join(chunks)
  dec = av.CodecContext.create('h264' if codec == 'x264' else 'hevc', 'r')
  decoded = []
  for f in [f for c in chunks for f in dec.decode(av.Packet(c))] + list(dec.decode(None)):
    if not f.key_frame:
      raise RuntimeError(f'{codec} coded a frame that is not intra: the comparison would '
                         'be against inter coding')
    decoded.append(_from_yuv420(f.to_ndarray(format='yuv420p'), ph, pw)[:h, :w])
  if len(decoded) != t:
    raise RuntimeError(f'{codec} returned {len(decoded)} frames for {t}')
  return data, np.stack(decoded)


def frames_rd_point(frames: np.ndarray, codec: str, setting: int,
                    with_ms_ssim: bool = True) -> dict:
  """One RD point of a classical codec on uint8[T, H, W, 3] frames (the I-frames).

  `codec` is 'jpeg' or 'webp' (each frame its own file; `setting` the quality) or
  'x264' or 'x265' (one intra-only stream; `setting` the QP). bpp counts every byte
  over all pixels; PSNR and MS-SSIM (NaN unless `with_ms_ssim`) are means over
  frames, as for our bitstreams.
  """
  frames = np.asarray(frames, np.uint8)
  if codec in FORMATS:
    coded = [compress(f, codec, setting) for f in frames]
    num_bytes = sum(len(data) for data, _ in coded)
    decoded = np.stack([image for _, image in coded])
    label = f'q{setting}'
  elif codec in VIDEO_CODECS:
    data, decoded = compress_intra(frames, codec, setting)
    num_bytes, label = len(data), f'qp{setting}'
  else:
    raise ValueError(f'unknown codec {codec!r}; known: {FORMATS + VIDEO_CODECS}')
  t, h, w, _ = frames.shape
  return {'codec': codec, 'setting': label, 'bpp': metrics.bpp(num_bytes, t * h * w),
          'psnr_db': metrics.mean_psnr_db(frames, decoded),
          'ms_ssim': mean_ms_ssim(frames, decoded) if with_ms_ssim else float('nan')}


def mean_ms_ssim(frames: np.ndarray, decoded: np.ndarray) -> float:
  """Mean MS-SSIM over frames; NaN for frames smaller than `metrics.MS_SSIM_MIN_SIDE`."""
  if min(frames.shape[1:3]) < metrics.MS_SSIM_MIN_SIDE:
    return float('nan')
  return float(np.mean([metrics.ms_ssim(a, b) for a, b in zip(frames, decoded)]))
