"""What the accelerator run carries to the GPU machine (`make accelerator-pack`).

  .venv/bin/python benchmarks/accelerator_pack.py --images=../shared/data/train_images

writes `.accel/`, which the device tool's `run` carries (`carry=[".accel"]`):

- `train_images/`: the training photos as lossless WebP (about three quarters of the
  PNGs' size; every file is decoded again and compared pixel for pixel). WebP's slowest,
  smallest method costs some minutes of CPU once: a later pack keeps each file of the
  last one that still decodes to its photo.
- `start_weights/`: the local campaign's constant-rate branch as models
  (`campaign.export_branch`), so that the GPU's campaign continues this machine's
  newest weights instead of the older shipped ones. Left out when there is no branch.

Everything that travels (tracked files, untracked files git does not ignore, and
`.accel`) must stay under the device tool's 64 MiB; the script prints the total and
exits 1 above it. Each folder is written beside its final name and renamed into place,
so an interrupted pack leaves the previous one.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT]

import numpy as np
from absl import app, flags
from PIL import Image

from iac_jax.training import campaign, data

# The device tool's limit on the working tree that travels, carried paths included.
TRAVEL_LIMIT = 64 << 20


def _decodes_to(webp: bytes, image: np.ndarray) -> bool:
  try:
    with Image.open(io.BytesIO(webp)) as im:
      return np.array_equal(np.asarray(im.convert('RGB')), image)
  except OSError:
    return False


def webp_lossless(image: np.ndarray) -> bytes:
  """uint8[H, W, 3] as lossless WebP bytes that decode to exactly `image`."""
  buf = io.BytesIO()
  # method 6: 1.7% smaller than 4 (0.54 MiB on the 43 photos) for about 4 CPU minutes.
  Image.fromarray(image).save(buf, 'WEBP', lossless=True, quality=100, method=6)
  if not _decodes_to(buf.getvalue(), image):
    raise ValueError('lossless WebP did not decode to the same pixels')
  return buf.getvalue()


def _replace_dir(fill, final: str):
  """Calls fill(tmp) on a fresh folder beside `final`, then puts it in `final`'s place."""
  tmp = final + '.partial'
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  written = fill(tmp)
  shutil.rmtree(final, ignore_errors=True)
  if written:
    os.rename(tmp, final)
  else:
    shutil.rmtree(tmp)
  return written


def pack_photos(paths: list[str], out_dir: str) -> tuple[int, int]:
  """Writes each photo as `out_dir/<stem>.webp`; returns (photos, of them encoded
  afresh). A file of the previous pack is kept where it decodes to the same photo."""
  encoded = 0

  def fill(tmp):
    nonlocal encoded
    for path in paths:
      stem = os.path.splitext(os.path.basename(path))[0]
      image = data.load_rgb(path)
      webp = None
      previous = os.path.join(out_dir, stem + '.webp')
      if os.path.isfile(previous):
        with open(previous, 'rb') as f:
          webp = f.read()
        if not _decodes_to(webp, image):
          webp = None
      if webp is None:
        webp = webp_lossless(image)
        encoded += 1
      with open(os.path.join(tmp, stem + '.webp'), 'wb') as f:
        f.write(webp)
    return len(paths)
  return _replace_dir(fill, out_dir), encoded


def travel_bytes(root: str, carried: str) -> int:
  """Bytes of what the device tool sends: git's tracked and untracked-not-ignored
  files, plus the carried folder."""
  listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others',
                           '--exclude-standard'], cwd=root, capture_output=True,
                          check=True).stdout.decode().split('\0')
  total = sum(os.path.getsize(os.path.join(root, p)) for p in listed
              if p and os.path.isfile(os.path.join(root, p)))
  for folder, _, files in os.walk(carried):
    total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
  return total


_IMAGES = flags.DEFINE_string('images', os.path.join(ROOT, '..', 'shared', 'data',
                                                     'train_images'), 'Training photos.')
_WORKDIR = flags.DEFINE_string('workdir', os.path.join(ROOT, 'runs', 'campaign'),
                               'The local campaign, whose branch is exported.')
_OUT = flags.DEFINE_string('out', os.path.join(ROOT, '.accel'), 'The carried folder.')
_CONFIG = flags.DEFINE_string('config', 'small', 'Config of the campaign.')
_BETAS = flags.DEFINE_list('betas', ['500', '100', '30', '10'], 'Its rate weights.')


def main(argv):
  del argv
  paths = data.find_images(_IMAGES.value)
  if not paths:
    raise app.UsageError(f'no photos under {_IMAGES.value!r}')
  os.makedirs(_OUT.value, exist_ok=True)
  _, encoded = pack_photos(paths, os.path.join(_OUT.value, 'train_images'))
  print(f'{len(paths)} photos as lossless WebP in {_OUT.value}/train_images '
        f'({encoded} encoded, {len(paths) - encoded} kept from the last pack)')
  cfg = campaign.CampaignConfig(config_name=_CONFIG.value,
                                betas=tuple(float(b) for b in _BETAS.value))
  written = _replace_dir(lambda tmp: campaign.export_branch(cfg, _WORKDIR.value, tmp),
                         os.path.join(_OUT.value, 'start_weights'))
  if written:
    steps = ', '.join(f'{m.name} {m.metadata["cumulative_steps"]}' for m in written)
    print(f'the campaign branch of {_WORKDIR.value} in {_OUT.value}/start_weights '
          f'(cumulative steps: {steps})')
  else:
    print(f'no campaign branch in {_WORKDIR.value}: the run starts from the shipped weights')
  total = travel_bytes(ROOT, _OUT.value)
  print(f'what travels: {total / (1 << 20):.1f} MiB of at most {TRAVEL_LIMIT >> 20} MiB')
  if total > TRAVEL_LIMIT:
    sys.exit(f'accelerator pack: {total / (1 << 20):.1f} MiB would travel, over the '
             f'{TRAVEL_LIMIT >> 20} MiB the device tool takes')


if __name__ == '__main__':
  app.run(main)
