"""Long fuzz run of the decoder, by hand (the test suite runs a short one).

  .venv/bin/python fuzz/fuzz_decoder.py --cases=100000 [--seed=0]

Mutates an image stream and a video stream (with an update section) of a tiny
random model; prints the outcome counts per mutation kind. Any exception other
than BitstreamError, a corrupted stream that decodes, or a case slower than
--time_bound_s stops the run with the offending kind.
"""

from __future__ import annotations

import time

import numpy as np
from absl import app, flags

from iac_jax import init_model
from iac_jax.adaptation.video_codec import encode_video
from iac_jax.codec import image_codec
from iac_jax.evaluation import fuzzing

_CASES = flags.DEFINE_integer('cases', 100000, 'Mutants per stream.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the mutations.')
_TIME_BOUND = flags.DEFINE_float('time_bound_s', 10.0, 'Slowest acceptable case.')


def _smooth(h, w, seed):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
  base = np.stack([np.sin(6 * xx + seed), np.cos(5 * yy), np.sin(3 * (xx + yy))], -1)
  return np.clip(127 + 100 * base + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)


def main(argv):
  del argv
  model = init_model('tiny', seed=0)
  streams = {
      'image': image_codec.encode_image(model, _smooth(40, 70, 0)),
      'video': encode_video(model, np.stack([_smooth(64, 64, s) for s in range(2)]), 2.0,
                            method='full', steps=2, crop_size=0, learning_rate=1e-3),
  }
  for name, data in streams.items():
    start = time.time()
    report = lambda done, name=name, start=start: print(
        f'{name}: {done}/{_CASES.value} cases, {time.time() - start:.0f} s', flush=True)
    counts = fuzzing.run(data, model, _CASES.value, _SEED.value, _TIME_BOUND.value, report)
    print(f'{name} stream ({len(data)} bytes): {sum(counts.values())} cases in '
          f'{time.time() - start:.0f} s, no failure')
    for (kind, outcome), n in sorted(counts.items()):
      print(f'  {kind:18s} {outcome:15s} {n}')


if __name__ == '__main__':
  app.run(main)
