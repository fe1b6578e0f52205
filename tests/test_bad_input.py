"""Bad input: one test per kind the reliability issue lists, each asserting the message.

The command line must print one error line, exit 1 and write nothing. Covered by other
files, and not repeated here:
  missing input file      test_cli.py::test_errors_are_one_line_with_nonzero_exit (decode),
                          io/test_video.py::test_bad_videos_give_clear_errors (read_video)
  empty y4m (no frames)   io/test_video.py::test_bad_videos_give_clear_errors
  10-bit y4m              io/test_video.py::test_bad_videos_give_clear_errors
  frames under 64 pixels  codec/test_image_codec.py::
                          test_decode_equals_the_encoders_reconstruction
                          (1x1, 7x5, 65x129 images), adaptation/test_finetuning.py::
                          test_every_method_produces_a_decodable_stream (30x40 frames)
  NaN frames in adapt     adaptation/test_finetuning.py::
                          test_steps_with_non_finite_loss_are_skipped_and_never_reach_the_stream
  model not installed     codec/test_image_codec.py::
                          test_decode_refuses_other_weights_and_unknown_models
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import iac_jax
from iac_jax.adaptation import finetuning, video_codec
from iac_jax.codec import image_codec
from iac_jax.io import image_io, video
from tests.conftest import smooth_image


def _cli(*args):
  return subprocess.run([sys.executable, '-m', 'iac_jax.cli', *args], capture_output=True,
                        text=True, timeout=300, check=False)


def _assert_refused(proc, output, *fragments, only_line=True):
  """Exit status 1, one `iac-jax:` line (the last) holding `fragments`, no output."""
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 1, proc.stderr[-3000:]
  assert lines and lines[-1].startswith('iac-jax: '), proc.stderr[-3000:]
  assert [line.startswith('iac-jax:') for line in lines].count(True) == 1, proc.stderr
  assert all(f in lines[-1] for f in fragments), lines[-1]
  assert 'Traceback' not in proc.stderr and 'Warning' not in proc.stderr, proc.stderr
  if only_line:
    assert len(lines) == 1, proc.stderr
  folder = os.path.dirname(output)
  assert not os.path.exists(output)
  assert not [p for p in os.listdir(folder) if p.endswith('.tmp')]  # atomic_io's temps


def _write_y4m_420(path, frames, fps='30:1'):
  """uint8 RGB frames[T, H, W, 3] as 8-bit 4:2:0 y4m (chroma: top-left sample of 2x2)."""
  _, h, w, _ = frames.shape
  with open(path, 'wb') as f:
    f.write(f'YUV4MPEG2 W{w} H{h} F{fps} Ip A1:1 C420jpeg\n'.encode())
    for frame in frames:
      y, u, v = video.rgb_to_yuv(frame)
      f.write(b'FRAME\n' + y.tobytes() + u[::2, ::2].tobytes() + v[::2, ::2].tobytes())


def _write_av(path, codec_name, pix_fmt, frames):
  av = pytest.importorskip('av')
  with av.open(str(path), 'w') as container:
    stream = container.add_stream(codec_name, rate=25)
    stream.width, stream.height, stream.pix_fmt = 32, 32, pix_fmt
    if not frames:
      container.start_encoding()
    for t in range(frames):
      image = av.VideoFrame.from_ndarray(smooth_image(32, 32, seed=t), format='rgb24')
      container.mux(stream.encode(image))
    container.mux(stream.encode())


# --- missing or unreadable files --------------------------------------------------

# Root reads a file whatever its mode, and CI runs as root: there the chmod test below
# is skipped, and this one, whose input fails to read for root too, stands in for it.
@pytest.mark.skipif(not os.path.exists('/proc/self/mem'), reason='needs Linux /proc')
def test_inputs_that_fail_to_read_are_refused_in_one_line_also_for_root(tmp_path,
                                                                         tiny_model_file):
  # /proc/self/mem opens (each process may open its own) but reading it at offset 0,
  # an unmapped address, fails with EIO whoever reads it.
  unreadable = '/proc/self/mem'
  with pytest.raises(ValueError, match='cannot read image /proc/self/mem: .*Input/output'):
    image_io.read_image(unreadable)
  out = str(tmp_path / 'out.iac')
  _assert_refused(_cli('encode', f'--input={unreadable}', f'--output={out}',
                       f'--model={tiny_model_file}'), out,
                  'cannot read image /proc/self/mem', 'Input/output error')
  out = str(tmp_path / 'out.png')
  _assert_refused(_cli('decode', f'--input={unreadable}', f'--output={out}'), out,
                  'cannot read /proc/self/mem: Input/output error')


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads files whatever their mode')
def test_unreadable_input_files_are_refused_in_one_line(tmp_path, tiny_model_file):
  image, stream = tmp_path / 'in.png', tmp_path / 'in.iac'
  image_io.write_png(str(image), smooth_image(20, 20))
  stream.write_bytes(b'IACJ')
  os.chmod(image, 0)
  os.chmod(stream, 0)
  out = str(tmp_path / 'out.iac')
  _assert_refused(_cli('encode', f'--input={image}', f'--output={out}',
                       f'--model={tiny_model_file}'), out, 'Permission denied')
  out = str(tmp_path / 'out.png')
  _assert_refused(_cli('decode', f'--input={stream}', f'--output={out}'), out,
                  'Permission denied')


def test_missing_model_and_directory_inputs_are_refused_in_one_line(tmp_path,
                                                                    tiny_model_file):
  # A directory in place of a file fails as an unreadable file does (and root too).
  folder = tmp_path / 'clip.y4m'
  folder.mkdir()
  out = str(tmp_path / 'out.iac')
  _assert_refused(_cli('encode', f'--input={folder}', f'--output={out}',
                       f'--model={tiny_model_file}'), out, 'Is a directory', str(folder))
  _assert_refused(_cli('decode', f'--input={folder}', f'--output={tmp_path}/out.png'),
                  f'{tmp_path}/out.png', 'Is a directory')
  image = tmp_path / 'in.png'
  image_io.write_png(str(image), smooth_image(20, 20))
  missing = tmp_path / 'no-such-model.msgpack'
  _assert_refused(_cli('encode', f'--input={image}', f'--output={out}', f'--model={missing}'),
                  out, 'model file not found', str(missing))


# --- empty videos ---------------------------------------------------------------

def test_empty_videos_are_refused_in_one_line(tmp_path, tiny_model, tiny_model_file):
  zero_bytes, header_only = tmp_path / 'zero.y4m', tmp_path / 'header.y4m'
  zero_bytes.write_bytes(b'')
  header_only.write_bytes(b'YUV4MPEG2 W64 H64 F25:1 C420jpeg\n')
  out = str(tmp_path / 'out.iac')
  _assert_refused(_cli('encode', f'--input={zero_bytes}', f'--output={out}',
                       f'--model={tiny_model_file}'), out, 'is empty (0 bytes)')
  _assert_refused(_cli('encode', f'--input={header_only}', f'--output={out}',
                       f'--model={tiny_model_file}'), out, 'has no frames')
  no_frames = tmp_path / 'none.mp4'
  _write_av(no_frames, 'libx264', 'yuv420p', 0)
  with pytest.raises(video.VideoError, match='no video stream'):
    video.read_video(str(no_frames))
  with pytest.raises(ValueError, match=r'T, H, W >= 1'):
    iac_jax.encode_video(tiny_model, np.zeros((0, 16, 16, 3), np.uint8), 2.0, method='none')


# --- videos shorter than one I-frame interval ----------------------------------

def test_video_shorter_than_one_iframe_interval_codes_its_first_frame(tmp_path,
                                                                      tiny_model_file):
  # 5 frames at 30 fps last 1/6 s, less than the 1/2 s between I-frames at 2 per second.
  frames = np.stack([smooth_image(40, 60, seed=s) for s in range(5)])
  src = tmp_path / 'short.y4m'
  _write_y4m_420(src, frames, fps='30:1')
  iframes, fps = video.read_video(str(src))
  assert iframes.shape == (1, 40, 60, 3) and fps == 30.0
  out = tmp_path / 'short.iac'
  proc = _cli('encode', f'--input={src}', f'--output={out}', f'--model={tiny_model_file}',
              '--method=none')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert '1 I-frames of 60x40 (2 per second of a 30.000 fps video)' in proc.stderr
  model = iac_jax.load_model(tiny_model_file)
  np.testing.assert_array_equal(
      iac_jax.decode(out.read_bytes(), model),
      video_codec.encode_video_detailed(
          model, iframes, 2.0, finetuning.AdaptationConfig(method='none')).reconstruction)


# --- frames smaller than 64 pixels -----------------------------------------------

def test_frames_smaller_than_64_pixels_adapt_on_crops_and_decode_exactly(tmp_path,
                                                                         tiny_model):
  # 5x71 (odd, so 4:2:0 chroma rounds up) pads to 64x128; 64-pixel crops then cut the
  # padded frame, which no other test does (they adapt on whole frames).
  src = tmp_path / 'thin.y4m'
  _write_y4m_420(src, np.stack([smooth_image(5, 71, seed=s) for s in range(2)]), '2:1')
  frames, _ = video.read_video(str(src))
  assert frames.shape == (2, 5, 71, 3)
  config = finetuning.AdaptationConfig(method='full', steps=2, learning_rate=1e-3,
                                       crop_size=64)
  enc = video_codec.encode_video_detailed(tiny_model, frames, 2.0, config)
  assert enc.update_bits > 0 and np.isfinite(enc.history['loss']).all()
  np.testing.assert_array_equal(iac_jax.decode(enc.data, tiny_model), enc.reconstruction)


# --- 10-bit or unusual pixel formats ------------------------------------------------

def test_ten_bit_and_non_420_videos_are_refused_in_one_line(tmp_path, tiny_model_file):
  ten_bit, full_chroma = tmp_path / 'ten.mkv', tmp_path / 'full.mp4'
  _write_av(ten_bit, 'ffv1', 'yuv420p10le', 2)
  _write_av(full_chroma, 'libx264', 'yuv444p', 2)
  with pytest.raises(video.VideoError, match='unsupported pixel format yuv444p'):
    video.read_video(str(full_chroma))
  chroma_422 = tmp_path / 'c422.y4m'
  chroma_422.write_bytes(b'YUV4MPEG2 W4 H4 F25:1 C422\nFRAME\n' + bytes(32))
  with pytest.raises(video.VideoError, match='unsupported y4m colour space C422'):
    video.read_video(str(chroma_422))
  out = str(tmp_path / 'out.iac')
  _assert_refused(_cli('encode', f'--input={ten_bit}', f'--output={out}',
                       f'--model={tiny_model_file}'), out,
                  'unsupported pixel format yuv420p10le', 'only 8-bit yuv420p')


def test_sixteen_bit_images_are_rescaled_and_float_images_refused(tmp_path):
  levels = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)
  Image.fromarray(levels).save(tmp_path / 'gray16.png')
  # Read as 8 bits by scaling (65535 -> 255), not by clipping everything above 255.
  np.testing.assert_array_equal(image_io.read_image(str(tmp_path / 'gray16.png')),
                                np.round(levels / 257.0).astype(np.uint8))
  Image.fromarray(np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)).save(
      tmp_path / 'float.tif')
  with pytest.raises(ValueError, match=r'unsupported pixel format .*F \(32-bit float\)'):
    image_io.read_image(str(tmp_path / 'float.tif'))


# --- NaN or infinite values during adaptation -----------------------------------

def test_adaptation_that_diverges_stops_with_a_clear_error_and_writes_nothing(
    tmp_path, tiny_model, tiny_model_file):
  # An update beyond the coder's range (or whose cast would overflow) is refused ...
  config = finetuning.AdaptationConfig(method='full', steps=1)
  history = {'loss': np.full(1, np.nan, np.float32)}
  for value in (1e30, 3e38):
    diverged = {'phi': {'w': np.zeros(1)}, 'delta': {'w': np.array([value], np.float32)}}
    with pytest.raises(ValueError, match='adaptation diverged: the parameter update is too'):
      finetuning.finish(diverged, [history], config)
  # ... and so are latents that a diverged encoder produces: inf, NaN or huge.
  image = smooth_image(64, 64)  # latents: y [1, 4, 4, M], z [1, 1, 1, Nz]
  y = np.zeros((1, 4, 4, tiny_model.config.num_latents), np.float32)
  z = np.zeros((1, 1, 1, tiny_model.config.num_hyper_latents), np.float32)
  for bad in (np.inf, np.nan, 1e12):
    with pytest.raises(ValueError, match='latents are not finite or too large.*diverged'):
      image_codec.encode_frame(tiny_model, image, (y, np.full_like(z, bad)))
    with pytest.raises(ValueError, match='latents are not finite or too large.*diverged'):
      image_codec.encode_frame(tiny_model, image, (np.full_like(y, bad), np.zeros_like(z)))
  # End to end: Adam's first step moves every parameter by about 1e30.
  src, out = tmp_path / 'clip.y4m', str(tmp_path / 'clip.iac')
  video.write_y4m(str(src), np.stack([smooth_image(40, 60, seed=s) for s in range(2)]), 2.0)
  proc = _cli('encode', f'--input={src}', f'--output={out}', f'--model={tiny_model_file}',
              '--steps=2', '--crop_size=0', '--learning_rate=1e30')
  _assert_refused(proc, out, 'adaptation diverged', 'smaller learning rate', only_line=False)


# --- a bitstream naming a model that is not installed ----------------------------

def test_stream_for_a_model_that_is_not_installed_is_refused_in_one_line(tmp_path,
                                                                         tiny_model):
  stream = tmp_path / 'x.iac'
  stream.write_bytes(iac_jax.encode_image(tiny_model, smooth_image(16, 16)))
  out = str(tmp_path / 'x.png')
  _assert_refused(_cli('decode', f'--input={stream}', f'--output={out}'), out,
                  "needs model 'tiny-init0', which is not installed")
