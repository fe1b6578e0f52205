"""SIGKILL in the middle of training and of adaptation, then the same command again.

Each test runs a command to completion; then the same command over other directories
until SIGKILL lands just after its first checkpoint is on disk, and once more to
completion, whose output must equal the uninterrupted one byte for byte. The commands:
`experiments/train_global.py` and what `iac-jax encode --checkpoint_dir` does (as a
script that checkpoints every step). Resuming under JAX's persistent compilation cache,
which these runs use, once corrupted the heap (see `checkpointing.restore_latest`).
"""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from iac_jax.io import video
from tests.conftest import smooth_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def env(tmp_path_factory):
  """Every run here shares one persistent JAX compilation cache: only the first run of
  each kind compiles (a cached executable computes what a fresh compile does)."""
  return dict(os.environ, PYTHONPATH=ROOT,
              JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp('jax_cache')),
              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')


def _run(cmd, env):
  proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300,
                        check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stderr


def _finished_steps(directory) -> list[int]:
  """Steps of the complete Orbax checkpoints (a step is renamed into place when done)."""
  if not os.path.isdir(directory):
    return []
  return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def _kill_at_first_checkpoint(cmd, env, checkpoint_dir, log_path, timeout_s=240) -> int:
  """Starts `cmd` and SIGKILLs it once a checkpoint is complete; returns the latest
  complete checkpoint's step after its death."""
  with open(log_path, 'w') as log:
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
  try:
    deadline = time.monotonic() + timeout_s
    while not _finished_steps(checkpoint_dir):
      assert proc.poll() is None, (f'exited with {proc.returncode} before its first '
                                   f'checkpoint:\n{log_path.read_text()[-3000:]}')
      assert time.monotonic() < deadline, 'no checkpoint within the time limit'
      time.sleep(0.01)
  finally:
    if proc.poll() is None:
      os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
  # A run that ended before the signal could land exits 0: make it longer, never skip.
  assert proc.returncode == -signal.SIGKILL, (
      f'the run ended (status {proc.returncode}) before it could be killed')
  return _finished_steps(checkpoint_dir)[-1]


def _interrupt_and_resume(uninterrupted, interrupted, checkpoint_dir, tmp_path, env,
                          output=None) -> tuple[int, str]:
  """Runs `uninterrupted` to completion; then `interrupted` until SIGKILL at its first
  checkpoint (it must not have written `output` by then), and again to completion.
  Returns the step the last run resumed from and its stderr."""
  _run(uninterrupted, env)
  killed_at = _kill_at_first_checkpoint(interrupted, env, checkpoint_dir,
                                        tmp_path / 'killed.log')
  if output is not None:
    assert not os.path.exists(output)
    assert not [p for p in os.listdir(os.path.dirname(output)) if p.endswith('.tmp')]
  return killed_at, _run(interrupted, env)


def test_training_killed_with_sigkill_resumes_to_identical_weights(tmp_path, env):
  photos = tmp_path / 'photos'
  photos.mkdir()
  for s in range(2):
    Image.fromarray(smooth_image(72, 80, seed=s)).save(photos / f'p{s}.png')
  steps = 16

  def train(workdir):
    return [sys.executable, os.path.join(ROOT, 'experiments', 'train_global.py'),
            f'--images={photos}', f'--workdir={workdir}', '--config=tiny', '--betas=10',
            f'--steps={steps}', '--batch_size=1', '--crop_size=64', '--holdout=0',
            '--log_every=2', '--save_every=2', '--eval_every=0']

  workdir = tmp_path / 'resumed'
  killed_at, stderr = _interrupt_and_resume(train(tmp_path / 'straight'), train(workdir),
                                            workdir / 'checkpoints', tmp_path, env)
  assert killed_at < steps, 'killed after the last checkpoint: make the run longer'
  assert f'at step {killed_at}' in stderr, stderr[-2000:]
  weights = 'models/tiny-beta10.msgpack'
  assert (workdir / weights).read_bytes() == (tmp_path / 'straight' / weights).read_bytes()


@pytest.fixture(scope='module')
def model_file(tmp_path_factory, env):
  """A tiny random model, initialized in a subprocess: after the training test its
  op-by-op initialization is in the cache (conftest's would compile it all again)."""
  path = tmp_path_factory.mktemp('model') / 'tiny-test.msgpack'
  script = ('import sys, iac_jax; iac_jax.save_model('
            'iac_jax.init_model("tiny", seed=0, name="tiny-test"), sys.argv[1])')
  _run([sys.executable, '-c', script, str(path)], env)
  return str(path)


# What `iac-jax encode --checkpoint_dir` does (`video_codec.encode_video_detailed`), with a
# checkpoint after every step (the CLI's every 50 would need a far longer run).
_ENCODE = """
import sys
import jax
from iac_jax.adaptation import finetuning, video_codec
from iac_jax.codec import models
from iac_jax.io import atomic_io, video
model_path, src, out, ckpt, steps = sys.argv[1:]
model = models.load_model(model_path)
frames, fps = video.read_video(src)
config = finetuning.AdaptationConfig(method='full', steps=int(steps), learning_rate=1e-3)
result = finetuning.adapt(
    model.params, video_codec.padded_input(frames), jax.random.PRNGKey(3), config,
    model.config, video_pixels=frames[..., 0].size, checkpoint_dir=ckpt or None,
    checkpoint_every=1, progress_every=1,
    progress=lambda done, _: print(f'step {done}', file=sys.stderr, flush=True))
encoding = video_codec.encode_adapted(model, frames, fps, config, result, seed=3)
atomic_io.write_bytes(out, encoding.data)
"""


def test_encode_killed_with_sigkill_resumes_to_identical_bytes(tmp_path, env, model_file):
  steps = 12
  src = tmp_path / 'clip.y4m'
  video.write_y4m(str(src), np.stack([smooth_image(40, 60, seed=s) for s in range(2)]), 2.0)

  def encode(out, ckpt=''):
    return [sys.executable, '-c', _ENCODE, model_file, str(src), str(out), str(ckpt),
            str(steps)]

  straight, out, ckpt = tmp_path / 'straight.iac', tmp_path / 'resumed.iac', tmp_path / 'ckpt'
  killed_at, stderr = _interrupt_and_resume(encode(straight), encode(out, ckpt), ckpt,
                                            tmp_path, env, output=str(out))
  assert killed_at < steps, 'killed after the last checkpoint: make the run longer'
  # It went on from the checkpoint: only the later steps ran.
  shown = [int(n) for n in re.findall(r'^step (\d+)$', stderr, re.MULTILINE)]
  assert shown == list(range(killed_at + 1, steps + 1)), stderr[-2000:]
  assert out.read_bytes() == straight.read_bytes()
