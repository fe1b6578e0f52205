"""The `iac-jax` command line.

  iac-jax encode --input=IMG --output=OUT.iac [--model=NAME|PATH]
  iac-jax decode --input=OUT.iac --output=OUT.png [--model=NAME|PATH]
  iac-jax info --input=OUT.iac
  iac-jax models
  iac-jax demo [--output_dir=DIR]
"""

from __future__ import annotations

import json
import logging
import os
import sys

from absl import app, flags
from absl import logging as absl_logging

_COMMANDS = ('encode', 'decode', 'info', 'models', 'demo')

_INPUT = flags.DEFINE_string('input', None, 'Input file.')
_OUTPUT = flags.DEFINE_string('output', None, 'Output file.')
_MODEL = flags.DEFINE_string('model', None, 'Shipped model name or .msgpack path '
                             '(encode default: models.DEFAULT_MODEL; decode default: '
                             'the model the bitstream names).')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'demo_output', 'Where `demo` writes.')


class CliError(Exception):
  """A user-facing error: printed as one line, exit status 1."""


def _require(flag, name):
  if not flag.value:
    raise CliError(f'--{name} is required')
  return flag.value


def _default_model():
  from iac_jax import models  # pylint: disable=g-import-not-at-top
  if _MODEL.value:
    return models.load_model(_MODEL.value)
  if models.DEFAULT_MODEL not in models.shipped_models():
    raise CliError(f'the default model {models.DEFAULT_MODEL!r} is not installed; '
                   'pass --model=NAME or --model=PATH.msgpack')
  return models.load_model(models.DEFAULT_MODEL)


def _encode():
  from iac_jax import atomic_io, codec, image_io  # pylint: disable=g-import-not-at-top
  src, dst = _require(_INPUT, 'input'), _require(_OUTPUT, 'output')
  image = image_io.read_image(src)
  data = codec.encode_image(_default_model(), image)
  atomic_io.write_bytes(dst, data)
  h, w = image.shape[:2]
  print(json.dumps({'output': dst, 'bytes': len(data), 'bpp': 8 * len(data) / (h * w)}))


def _read_stream(path):
  try:
    with open(path, 'rb') as f:
      return f.read()
  except FileNotFoundError:
    raise CliError(f'input file not found: {path}') from None


def _decode():
  from iac_jax import codec, image_io, models  # pylint: disable=g-import-not-at-top
  src, dst = _require(_INPUT, 'input'), _require(_OUTPUT, 'output')
  model = models.load_model(_MODEL.value) if _MODEL.value else None
  frames = codec.decode(_read_stream(src), model)
  if not dst.lower().endswith('.png'):
    raise CliError('--output must end in .png')
  if len(frames) == 1:
    image_io.write_png(dst, frames[0])
  else:
    stem = dst[:-4]
    for t, frame in enumerate(frames):
      image_io.write_png(f'{stem}_{t:05d}.png', frame)
  print(json.dumps({'output': dst, 'frames': len(frames),
                    'height': int(frames.shape[1]), 'width': int(frames.shape[2])}))


def _info():
  from iac_jax import bitstream  # pylint: disable=g-import-not-at-top
  data = _read_stream(_require(_INPUT, 'input'))
  sizes = bitstream.section_sizes(data)
  h = sizes.pop('header')
  print(json.dumps({
      'version': bitstream.VERSION, 'kind': 'image' if h.kind == 0 else 'video',
      'model': h.model_name, 'model_fingerprint': h.model_fingerprint.hex(),
      'config': h.config_name, 'frames': h.frames, 'height': h.height, 'width': h.width,
      'total_bytes': len(data), **sizes}, indent=2))


def _models():
  from iac_jax import models  # pylint: disable=g-import-not-at-top
  print(json.dumps(models.describe_shipped(), indent=2))


def _demo():
  from iac_jax import demo  # pylint: disable=g-import-not-at-top
  model = _default_model()
  print(f'model {model.name}: {model.metadata.get("steps")} training steps on '
        f'{model.metadata.get("data")}, beta={model.metadata.get("beta")}', flush=True)
  r = demo.run_demo(model, _OUTPUT_DIR.value)
  print(f'image    {os.path.basename(r.image)} ({r.width}x{r.height})')
  print(f'bytes    {r.num_bytes} (real file size)')
  print(f'bpp      {r.bpp:.4f}')
  print(f'PSNR     {r.psnr_db:.2f} dB')
  print(f'encode   {r.encode_s:.2f} s (includes compilation)   decode {r.decode_s:.2f} s')
  print(f'wrote    {r.bitstream_path} and {r.decoded_path}')


def main(argv):
  if len(argv) != 2 or argv[1] not in _COMMANDS:
    raise app.UsageError(f'usage: iac-jax {{{",".join(_COMMANDS)}}} [--flags]')
  from iac_jax.bitstream import BitstreamError  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger('jax').setLevel(logging.WARNING)
  handler = {'encode': _encode, 'decode': _decode, 'info': _info, 'models': _models,
             'demo': _demo}[argv[1]]
  try:
    handler()
  except KeyboardInterrupt:
    print('iac-jax: interrupted; no output was written', file=sys.stderr)
    sys.exit(130)
  except BitstreamError as e:
    print(f'iac-jax: invalid bitstream: {e}', file=sys.stderr)
    sys.exit(1)
  except (CliError, ValueError, TypeError, OSError) as e:
    print(f'iac-jax: error: {e}', file=sys.stderr)
    sys.exit(1)


def run():
  """Console-script entry point."""
  app.run(main)


if __name__ == '__main__':
  run()
