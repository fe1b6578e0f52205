"""The `iac-jax` command line.

  iac-jax encode --input=IMG --output=OUT.iac [--model=NAME|PATH]
  iac-jax decode --input=OUT.iac --output=OUT.png [--model=NAME|PATH]
                 [--max_output_pixels=N]
  iac-jax info --input=OUT.iac
  iac-jax models
  iac-jax demo [--output_dir=DIR]
  iac-jax import-compressai --checkpoint=FILE --output=MODEL.msgpack [--beta=...]

Bad input (a file that cannot be read, a malformed bitstream, a flag out of range,
an adaptation or model that diverges) is reported in one line with exit status 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time

from absl import app, flags
from absl import logging as absl_logging

# The package's __init__ has imported adaptation (and JAX) before this line runs.
from iac_jax.adaptation.finetuning import EFFORTS, METHODS
from iac_jax.adaptation.update_selection import SUBSETS

_COMMANDS = ('encode', 'decode', 'info', 'models', 'demo', 'import-compressai')

_INPUT = flags.DEFINE_string('input', None, 'Input file.')
_OUTPUT = flags.DEFINE_string('output', None, 'Output file.')
_MODEL = flags.DEFINE_string('model', None, 'Shipped model name or .msgpack path '
                             '(encode default: models.DEFAULT_MODEL; decode default: '
                             'the model the bitstream names).')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'demo_output', 'Where `demo` writes.')
_METHOD = flags.DEFINE_enum('method', 'full', list(METHODS), 'Video: adaptation method.')
_EFFORT = flags.DEFINE_enum('effort', 'default', list(EFFORTS), 'Video: how hard to '
                            'adapt, a preset of the settings below (finetuning.EFFORTS): '
                            'default codes 20 I-frames of 1280x720 in under 10 minutes on '
                            '2 CPU cores; high is for a GPU.')
_STEPS = flags.DEFINE_integer('steps', None, 'Video: adaptation steps (default: the '
                              '--effort preset\'s).')
_LR = flags.DEFINE_float('learning_rate', None, 'Video: adaptation learning rate of the '
                         'encoder (and of the update, unless --delta_learning_rate).')
_DELTA_LR = flags.DEFINE_float('delta_learning_rate', None, 'Video: learning rate of the '
                               'decoder-side update.')
_WARMUP = flags.DEFINE_integer('warmup_steps', None, 'Video: learning-rate warm-up steps.')
_DECAY_AT = flags.DEFINE_float('decay_at', None, 'Video: the learning rates drop to a tenth '
                               'after this fraction of the steps (0: constant).')
_UPDATE_GROUPS = flags.DEFINE_enum('update_groups', None, list(SUBSETS), 'Video: which '
                                   'decoder-side parameters the update may move.')
_CROP = flags.DEFINE_integer('crop_size', None, 'Video: crop side for adaptation (multiple '
                             'of 64; 0 = whole frames).')
_IFRAME_FPS = flags.DEFINE_float('iframe_fps', 2.0, 'Video: I-frames per second sampled.')
_BETA = flags.DEFINE_float('beta', None, 'Video: rate weight (default: the model\'s); '
                           'import-compressai: the beta to record (default: 1/lambda of '
                           'the quality in a zoo file name).')
_SEED = flags.DEFINE_integer('seed', 0, 'Video: seed of the adaptation.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'import-compressai: a CompressAI '
                                  'MeanScaleHyperprior (mbt2018-mean) checkpoint.')
_MAX_OUTPUT_PIXELS = flags.DEFINE_integer(
    'max_output_pixels', None, 'decode: the most pixels (frames x height x width) to '
    'allocate for the output; a stream declaring more is refused (default: '
    'bitstream.MAX_OUTPUT_PIXELS, 2^28, 768 MiB).', lower_bound=1)
_CHOOSE_UPDATE = flags.DEFINE_bool('choose_update', None, 'Video: send only the layers of '
                                   'the update that pay for their bits on the I-frames '
                                   '(iac_jax/adaptation/update_selection.py).')
_PLATEAU = flags.DEFINE_integer('plateau_window', 0, 'Video: stop adapting once the loss has '
                                'not improved for two windows of this many steps (0: run '
                                'all --steps; see iac_jax/adaptation/stopping.py).')
_MAX_ADAPT_SECONDS = flags.DEFINE_float('max_adapt_seconds', 0, 'Video: cap on the adaptation '
                                        'time, checked every --plateau_window steps (or 25).')
_CHECKPOINT_DIR = flags.DEFINE_string('checkpoint_dir', None, 'Video: checkpoint the '
                                      'adaptation here; a rerun resumes from it.')


class CliError(Exception):
  """A user-facing error: printed as one line, exit status 1."""


@contextlib.contextmanager
def _bad_input():
  """Turns the ValueError of a call whose ValueError means bad input (a reader of a
  user's file, a config built from flags) into a CliError. Anything else, a bug,
  keeps its traceback."""
  try:
    yield
  except ValueError as e:
    raise CliError(str(e)) from None


def _require(flag, name):
  if not flag.value:
    raise CliError(f'--{name} is required')
  return flag.value


def _load_model(name_or_path):
  from iac_jax.codec import models  # pylint: disable=g-import-not-at-top
  with _bad_input():
    return models.load_model(name_or_path)


def _default_model():
  from iac_jax.codec import models  # pylint: disable=g-import-not-at-top
  if _MODEL.value:
    return _load_model(_MODEL.value)
  if models.DEFAULT_MODEL not in models.shipped_models():
    raise CliError(f'the default model {models.DEFAULT_MODEL!r} is not installed; '
                   'pass --model=NAME or --model=PATH.msgpack')
  return _load_model(models.DEFAULT_MODEL)


def _print_cpu_hint() -> None:
  """On a CPU, says once how to make the adaptation steps faster (huge pages)."""
  from iac_jax.optim import host_memory  # pylint: disable=g-import-not-at-top
  if hint := host_memory.first_cpu_hint():
    print(hint, file=sys.stderr, flush=True)


def _progress_printer(total: int, label: str = ''):
  start = time.perf_counter()

  def report(done, m):
    if done == 0:  # (re)start the clock
      nonlocal start
      start = time.perf_counter()
      return
    elapsed = time.perf_counter() - start
    eta = elapsed / done * (total - done)
    mse = m['mse_255']  # inf or NaN when a step diverged (the step is then skipped)
    psnr_db = 10 * math.log10(255**2 / max(mse, 1e-9)) if math.isfinite(mse) else math.nan
    print(f'{label}step {done}/{total}  R {m["bpp"]:.4f} bpp  '
          f'D {psnr_db:.2f} dB  '
          f'M {m["model_bits"] / 1000:.1f} kbit  ETA {eta:.0f} s', file=sys.stderr, flush=True)

  return report


def _adaptation_config(**fields):
  """The --effort preset with every video flag that was set on top (bad values: ValueError)."""
  from iac_jax.adaptation import finetuning  # pylint: disable=g-import-not-at-top
  return finetuning.config_for_effort(
      _EFFORT.value, steps=_STEPS.value, learning_rate=_LR.value,
      delta_learning_rate=_DELTA_LR.value, warmup_steps=_WARMUP.value,
      decay_at=_DECAY_AT.value, update_groups=_UPDATE_GROUPS.value, crop_size=_CROP.value,
      choose_update=_CHOOSE_UPDATE.value, **fields)


def _encode_video(src, dst):
  from iac_jax.adaptation import video_codec  # pylint: disable=g-import-not-at-top
  from iac_jax.adaptation.stopping import PlateauStop  # pylint: disable=g-import-not-at-top
  from iac_jax.codec import models  # pylint: disable=g-import-not-at-top
  from iac_jax.codec.image_codec import DivergedError  # pylint: disable=g-import-not-at-top
  from iac_jax.io import atomic_io, video  # pylint: disable=g-import-not-at-top
  model = _default_model()
  with _bad_input():
    frames, fps = video.read_video(src, _IFRAME_FPS.value)
    config = _adaptation_config(method=_METHOD.value,
                                beta=_BETA.value or models.default_beta(model))
    stop = None
    if _PLATEAU.value or _MAX_ADAPT_SECONDS.value:
      stop = PlateauStop(window=_PLATEAU.value or 25, max_seconds=_MAX_ADAPT_SECONDS.value,
                         patience=2 if _PLATEAU.value else 1 << 30)
  print(f'{len(frames)} I-frames of {frames.shape[2]}x{frames.shape[1]} '
        f'({_IFRAME_FPS.value:g} per second of a {fps:.3f} fps video)', file=sys.stderr)
  _print_cpu_hint()
  try:
    enc = video_codec.encode_video_detailed(model, frames, _IFRAME_FPS.value, config,
                                            _SEED.value, _progress_printer(config.steps),
                                            checkpoint_dir=_CHECKPOINT_DIR.value, stop=stop)
  except DivergedError as e:  # of the flags' making: too large a learning rate
    raise CliError(str(e)) from None
  atomic_io.write_bytes(dst, enc.data)
  pixels = frames.shape[0] * frames.shape[1] * frames.shape[2]
  print(json.dumps({'output': dst, 'bytes': len(enc.data), 'frames': len(frames),
                    'bpp': 8 * len(enc.data) / pixels, 'update_bits': enc.update_bits,
                    'adapt_steps': len(enc.history.get('loss', ())),
                    **({'update_layers_dropped': list(enc.update_choice.dropped)}
                       if enc.update_choice else {}),
                    'static_bits': round(enc.static_bits, 1),
                    'seconds': round(enc.total_seconds, 2)}))


def _encode():
  from iac_jax.codec import image_codec  # pylint: disable=g-import-not-at-top
  from iac_jax.io import atomic_io, image_io, video  # pylint: disable=g-import-not-at-top
  src, dst = _require(_INPUT, 'input'), _require(_OUTPUT, 'output')
  if video.is_video_path(src):
    return _encode_video(src, dst)
  with _bad_input():
    image = image_io.read_image(src)
  try:
    data = image_codec.encode_image(_default_model(), image)
  except image_codec.DivergedError as e:  # a model file whose weights diverged
    raise CliError(str(e)) from None
  atomic_io.write_bytes(dst, data)
  h, w = image.shape[:2]
  print(json.dumps({'output': dst, 'bytes': len(data), 'bpp': 8 * len(data) / (h * w)}))


def _read_stream(path):
  try:
    with open(path, 'rb') as f:
      return f.read()
  except FileNotFoundError:
    raise CliError(f'input file not found: {path}') from None
  except OSError as e:  # a directory, no permission, a read error
    raise CliError(f'cannot read {path}: {e.strerror or e}') from None


def _decode():
  from iac_jax.adaptation import decoding  # pylint: disable=g-import-not-at-top
  from iac_jax.io import image_io  # pylint: disable=g-import-not-at-top
  src, dst = _require(_INPUT, 'input'), _require(_OUTPUT, 'output')
  model = _load_model(_MODEL.value) if _MODEL.value else None
  from iac_jax.codec import bitstream  # pylint: disable=g-import-not-at-top
  from iac_jax.io import video  # pylint: disable=g-import-not-at-top
  data = _read_stream(src)
  frames = decoding.decode(data, model,
                        _MAX_OUTPUT_PIXELS.value or bitstream.MAX_OUTPUT_PIXELS)
  if dst.lower().endswith('.y4m'):
    fps = bitstream.unpack(data, max_output_pixels=None)[0]  # decoded already
    video.write_y4m(dst, frames, fps.fps_num / fps.fps_den if fps.fps_num else 2.0)
  elif dst.lower().endswith('.png'):
    if len(frames) != 1:
      raise CliError(f'the stream has {len(frames)} frames: give --output=OUT.y4m or '
                     'a folder for PNGs')
    image_io.write_png(dst, frames[0])
  else:
    os.makedirs(dst, exist_ok=True)
    for t, frame in enumerate(frames):
      image_io.write_png(os.path.join(dst, f'frame_{t:05d}.png'), frame)
  print(json.dumps({'output': dst, 'frames': len(frames),
                    'height': int(frames.shape[1]), 'width': int(frames.shape[2])}))


def _info():
  from iac_jax import stream_info  # pylint: disable=g-import-not-at-top
  data = _read_stream(_require(_INPUT, 'input'))
  print(json.dumps(stream_info.describe(data), indent=2))


def _models():
  from iac_jax.codec import models  # pylint: disable=g-import-not-at-top
  print(json.dumps(models.describe_shipped(), indent=2))


def _demo():
  from iac_jax import demo  # pylint: disable=g-import-not-at-top
  from iac_jax.codec.image_codec import DivergedError  # pylint: disable=g-import-not-at-top
  model = _default_model()
  with _bad_input():  # the flags, checked before the first method runs
    config = _adaptation_config()
  print(f'model {model.name}: {model.metadata.get("steps")} training steps on '
        f'{model.metadata.get("data")}, beta={model.metadata.get("beta")}', flush=True)
  print(f'clip  {os.path.basename(demo.SAMPLE_VIDEO)}: I-frames at 2 fps; adaptation '
        f'({_EFFORT.value} effort) {config.steps} steps on {config.crop_size}px crops',
        flush=True)
  _print_cpu_hint()
  printers = {}

  def progress(method, done, m):
    if method not in printers:
      printers[method] = _progress_printer(config.steps, f'[{method}] ')
    printers[method](done, m)

  try:
    rows = demo.run_video_demo(model, _OUTPUT_DIR.value, config=config, progress=progress)
  except DivergedError as e:
    raise CliError(str(e)) from None
  print()
  print(f'{"method":<10} {"frames":>6} {"total bpp":>10} {"PSNR dB":>8} '
        f'{"update bits":>12} {"(static)":>9} {"encode s":>9}')
  for r in rows:
    print(f'{r.method:<10} {r.frames:>6} {r.total_bpp:>10.4f} {r.psnr_db:>8.2f} '
          f'{r.update_bits:>12} {r.static_bits:>9.0f} {r.encode_s:>9.1f}')
  print(f'\ntotal bpp counts every byte of the bitstream (update, frames, headers); '
        f'bitstreams and the decoded frames of the last method are in {_OUTPUT_DIR.value}/')


def _import_compressai():
  from iac_jax.codec import compressai_import  # pylint: disable=g-import-not-at-top
  src, dst = _require(_CHECKPOINT, 'checkpoint'), _require(_OUTPUT, 'output')
  with _bad_input():  # CheckpointError, or an output name a model cannot have
    model = compressai_import.import_checkpoint(src, dst, beta=_BETA.value)
  meta = model.metadata
  print(json.dumps({'output': dst, 'name': model.name, 'config': model.config.name,
                    'N': meta['N'], 'M': meta['M'], 'beta': meta.get('beta'),
                    'source_sha256': meta['source_sha256']}))


def main(argv):
  if len(argv) != 2 or argv[1] not in _COMMANDS:
    raise app.UsageError(f'usage: iac-jax {{{",".join(_COMMANDS)}}} [--flags]')
  from iac_jax.codec.bitstream import BitstreamError  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger('jax').setLevel(logging.WARNING)
  handler = {'encode': _encode, 'decode': _decode, 'info': _info, 'models': _models,
             'demo': _demo, 'import-compressai': _import_compressai}[argv[1]]
  try:
    handler()
  except KeyboardInterrupt:
    print('iac-jax: interrupted; no output was written', file=sys.stderr)
    sys.exit(130)
  except BitstreamError as e:
    print(f'iac-jax: invalid bitstream: {e}', file=sys.stderr)
    sys.exit(1)
  except (CliError, OSError) as e:  # bad input, or files that cannot be read or written
    print(f'iac-jax: error: {e}', file=sys.stderr)
    sys.exit(1)


def run():
  """Console-script entry point."""
  app.run(main)


if __name__ == '__main__':
  run()
