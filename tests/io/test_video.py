import tracemalloc

import numpy as np
import pytest

from iac_jax.io import video
from tests.conftest import smooth_image


def _write_y4m_420(path, frames_yuv, w, h, fps='30000:1001', extra=''):
  with open(path, 'wb') as f:
    f.write(f'YUV4MPEG2 W{w} H{h} F{fps} Ip A0:0 C420jpeg{extra}\n'.encode())
    f.writelines(b'FRAME\n' + y.tobytes() + u.tobytes() + v.tobytes() for y, u, v in frames_yuv)


def test_iframe_indices_follow_the_real_frame_rate():
  assert video.iframe_indices(120, 30000 / 1001, 2.0) == [0, 15, 30, 45, 60, 75, 90, 105]
  assert video.iframe_indices(132, 25.0, 2.0) == [0, 12, 25, 38, 50, 62, 75, 88, 100, 112,
                                                  125]
  assert video.iframe_indices(3, 1.0, 2.0) == [0, 1, 2]  # never more than every frame
  with pytest.raises(video.VideoError, match='invalid frame rates: video 0.0'):
    video.iframe_indices(10, 0.0)


def test_colour_conversion_round_trips_within_one_level():
  rgb = smooth_image(32, 48)
  back = video.yuv_to_rgb(*video.rgb_to_yuv(rgb))
  assert np.abs(back.astype(int) - rgb).max() <= 2
  # Limited range: black and white land on 16 and 235.
  y, _, _ = video.rgb_to_yuv(np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8))
  np.testing.assert_array_equal(y, [[16, 235]])


def test_y4m_420_read_and_444_write_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  w, h = 10, 6
  frames = [(rng.integers(16, 236, (h, w), dtype=np.uint8),
             np.full((h // 2, w // 2), 128, np.uint8), np.full((h // 2, w // 2), 128, np.uint8))
            for _ in range(31)]
  path = tmp_path / 'a.y4m'
  _write_y4m_420(path, frames, w, h)
  iframes, fps = video.read_video(str(path))
  assert iframes.shape == (3, h, w, 3) and abs(fps - 29.97) < 0.01
  np.testing.assert_array_equal(iframes[1], video.yuv_to_rgb(
      frames[15][0], np.full((h, w), 128, np.uint8), np.full((h, w), 128, np.uint8)))
  out = tmp_path / 'b.y4m'
  video.write_y4m(str(out), iframes, 2.0)
  again, fps2 = video.read_video(str(out), iframe_fps=None)
  assert fps2 == 2.0 and again.shape == iframes.shape
  assert np.abs(again.astype(int) - iframes).max() <= 2


def test_bad_videos_give_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='not found'):
    video.read_video(str(tmp_path / 'missing.y4m'))
  ten_bit = tmp_path / 'ten.y4m'
  ten_bit.write_bytes(b'YUV4MPEG2 W4 H4 F25:1 C420p10\nFRAME\n' + bytes(48))
  with pytest.raises(video.VideoError, match='only 8-bit'):
    video.read_video(str(ten_bit))
  empty = tmp_path / 'empty.y4m'
  empty.write_bytes(b'YUV4MPEG2 W4 H4 F25:1 C420jpeg\n')
  with pytest.raises(video.VideoError, match='no frames'):
    video.read_video(str(empty))
  truncated = tmp_path / 'trunc.y4m'
  truncated.write_bytes(b'YUV4MPEG2 W4 H4 F25:1 C420jpeg\nFRAME\n' + bytes(10))
  with pytest.raises(video.VideoError, match='truncated'):
    video.read_video(str(truncated))
  not_y4m = tmp_path / 'x.y4m'
  not_y4m.write_bytes(b'hello')
  with pytest.raises(video.VideoError, match='not a YUV4MPEG2 file'):
    video.read_video(str(not_y4m))
  (tmp_path / 'a.txt').write_text('x')
  with pytest.raises(video.VideoError, match='unsupported video'):
    video.read_video(str(tmp_path / 'a.txt'))
  garbage_mp4 = tmp_path / 'g.mp4'
  garbage_mp4.write_bytes(b'\x00' * 100)
  with pytest.raises(video.VideoError, match='cannot read video .*g.mp4: .*Invalid data'):
    video.read_video(str(garbage_mp4))


def test_only_the_iframes_are_held_in_memory_while_reading(tmp_path):
  # 1500 frames at 100 fps (15 s): 30 I-frames at 2 per second. The file's 2.3 MB of
  # frames must not all be in memory at once; the 30 I-frames are 92 KB as RGB.
  rng = np.random.default_rng(0)
  w, h, count = 32, 32, 1500
  chroma = np.full((h // 2, w // 2), 128, np.uint8)
  path = tmp_path / 'long.y4m'
  _write_y4m_420(path, ((rng.integers(16, 236, (h, w), dtype=np.uint8), chroma, chroma)
                        for _ in range(count)), w, h, fps='100:1')
  tracemalloc.start()
  try:
    iframes, fps = video.read_video(str(path))
    _, peak_bytes = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert iframes.shape == (30, h, w, 3) and fps == 100.0
  assert peak_bytes < 1 << 20 < path.stat().st_size
  every_frame, _ = video.read_video(str(path), iframe_fps=None)
  np.testing.assert_array_equal(iframes, every_frame[video.iframe_indices(count, fps)])


def test_av_videos_keep_the_same_iframes_as_when_every_frame_is_read(tmp_path):
  av = pytest.importorskip('av')
  path = tmp_path / 'clip.mp4'
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('libx264', rate=25)
    stream.width, stream.height, stream.pix_fmt = 32, 32, 'yuv420p'
    for t in range(30):
      image = av.VideoFrame.from_ndarray(smooth_image(32, 32, seed=t), format='rgb24')
      container.mux(stream.encode(image))
    container.mux(stream.encode())
  iframes, fps = video.read_video(str(path))
  every_frame, _ = video.read_video(str(path), iframe_fps=None)
  assert fps == 25.0 and len(every_frame) == 30 and len(iframes) == 3  # frames 0, 12, 25
  np.testing.assert_array_equal(iframes, every_frame[[0, 12, 25]])
