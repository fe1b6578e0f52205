"""The prepared accelerator run, at smoke sizes on this CPU, and its ingest step.

What the GPU machine returns must check out on the CPU machine: the frames it
adapted and quantized decode bit-exactly here, and a result that does not match the
model it names is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, 'benchmarks', 'accelerator_run.py')
INGEST = os.path.join(ROOT, 'benchmarks', 'accelerator_ingest.py')


def _python(script: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout, check=False)


@pytest.fixture(scope='module')
def smoke_results(tmp_path_factory) -> str:
  out = str(tmp_path_factory.mktemp('accelerator') / 'out')
  proc = _python(RUN, '--smoke', f'--out={out}', '--parts=env,flips,adapt')
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  return out


def test_smoke_run_writes_every_part(smoke_results):
  with open(os.path.join(smoke_results, 'results.json')) as f:
    results = json.load(f)
  assert results['smoke'] and set(results['parts']) == {'env', 'flips', 'adapt'}
  assert not [p for p, r in results['parts'].items() if 'error' in r]
  assert results['parts']['env']['num_devices'] >= 1
  adapt = np.load(os.path.join(smoke_results, 'adapt.npz'))
  assert adapt['frames'].dtype == np.uint8 and adapt['frames'].shape[0] == 2
  # The smoke's large learning rate moves the update off zero: integers get coded.
  assert results['parts']['adapt']['nonzero_update'] > 0


def test_ingest_decodes_the_returned_frames_bit_exactly(smoke_results, tmp_path):
  readme = tmp_path / 'README.md'
  readme.write_text('# Benchmarks\n')
  proc = _python(INGEST, f'--results={smoke_results}', f'--readme={readme}')
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert proc.stdout.strip().splitlines()[-1].startswith('accelerator ingest: bit-exact (')
  text = readme.read_text()
  assert '**bit-exact**' in text and 'Scale-index flips, index64: 0 of' in text
  # A second ingest replaces its section instead of appending another.
  assert _python(INGEST, f'--results={smoke_results}', f'--readme={readme}').returncode == 0
  assert readme.read_text().count('accelerator-run:begin') == 1


def _tampered(smoke_results: str, tmp_path, change) -> str:
  bad = str(tmp_path / 'bad')
  shutil.copytree(smoke_results, bad)
  arrays = dict(np.load(os.path.join(bad, 'adapt.npz')))
  change(arrays)
  np.savez_compressed(os.path.join(bad, 'adapt.npz'), **arrays)
  return bad


def test_ingest_refuses_an_update_for_other_weights(smoke_results, tmp_path):
  def other_fingerprint(arrays):
    meta = json.loads(str(arrays['meta']))
    meta['fingerprint'] = '00' * 8
    arrays['meta'] = np.asarray(json.dumps(meta))

  proc = _python(INGEST, f'--results={_tampered(smoke_results, tmp_path, other_fingerprint)}')
  assert proc.returncode != 0
  assert 'fingerprint 0000000000000000' in proc.stderr
  assert 'check out the commit the run was made from' in proc.stderr


def test_ingest_refuses_an_update_of_the_wrong_shape(smoke_results, tmp_path):
  def wrong_shape(arrays):
    key = min(k for k in arrays if k.startswith('update['))
    arrays[key] = arrays[key].ravel()[:-1]

  proc = _python(INGEST, f'--results={_tampered(smoke_results, tmp_path, wrong_shape)}')
  assert proc.returncode != 0
  assert 'accelerator ingest: the update: update[' in proc.stderr and 'has shape' in proc.stderr


def test_a_failing_part_does_not_stop_the_others(tmp_path):
  out = str(tmp_path / 'out')
  proc = _python(RUN, '--smoke', f'--out={out}', '--parts=flips,env',
                 '--model=no-such-model')
  assert proc.returncode == 1  # --smoke is strict
  with open(os.path.join(out, 'results.json')) as f:
    parts = json.load(f)['parts']
  assert 'no-such-model' in parts['flips']['error']
  assert 'error' not in parts['env'] and parts['env']['num_devices'] >= 1
  assert not os.path.exists(os.path.join(out, 'flips.npz'))


def _load_script(name: str, path: str):
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_the_pack_keeps_photos_exact_and_reencodes_only_what_changed(tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  pack = _load_script('accelerator_pack', os.path.join(ROOT, 'benchmarks',
                                                       'accelerator_pack.py'))
  rng = np.random.default_rng(0)
  photos = {}
  for name in ('a', 'b'):
    photos[name] = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    Image.fromarray(photos[name]).save(tmp_path / f'{name}.png')
  paths = [str(tmp_path / 'a.png'), str(tmp_path / 'b.png')]
  out = str(tmp_path / 'train_images')

  def unpacked():
    result = {}
    for f in sorted(os.listdir(out)):
      with Image.open(os.path.join(out, f)) as im:
        result[f] = np.asarray(im.convert('RGB'))
    return result

  assert pack.pack_photos(paths, out) == (2, 2)
  got = unpacked()
  assert set(got) == {'a.webp', 'b.webp'}
  assert all(np.array_equal(got[k + '.webp'], v) for k, v in photos.items())
  assert pack.pack_photos(paths, out) == (2, 0)  # nothing changed: nothing encoded
  photos['b'] = 255 - photos['b']
  Image.fromarray(photos['b']).save(tmp_path / 'b.png')
  (tmp_path / 'train_images' / 'a.webp').write_bytes(b'RIFF not a webp')
  assert pack.pack_photos(paths, out) == (2, 2)  # a changed photo, a broken file
  got = unpacked()
  assert all(np.array_equal(got[k + '.webp'], v) for k, v in photos.items())
  assert not os.path.exists(out + '.partial')


def test_installing_returned_weights_never_discards_a_newer_local_branch(tmp_path):
  import jax  # pylint: disable=g-import-not-at-top
  from flax import serialization  # pylint: disable=g-import-not-at-top

  import iac_jax  # pylint: disable=g-import-not-at-top
  from iac_jax.codec import models, weight_grid  # pylint: disable=g-import-not-at-top
  from iac_jax.optim import checkpointing  # pylint: disable=g-import-not-at-top
  ingest = _load_script('accelerator_ingest', INGEST)
  start = iac_jax.init_model('tiny', name='tiny-beta100')
  # As the run writes them: on their grids, stored as model files store them.
  trained = models.Model(start.name, start.config, weight_grid.grid_precision(start.params))
  returned = tmp_path / 'returned'
  returned.mkdir()
  (returned / 'weights.msgpack').write_bytes(serialization.msgpack_serialize(
      {trained.name: jax.tree.map(weight_grid.encode_leaf, trained.params)}))
  results = {'parts': {'train': {
      'models': {trained.name: {'config': 'tiny', 'beta': 100.0, 'cumulative_steps': 1000}},
      'fingerprints': {trained.name: trained.fingerprint.hex()}}}}
  weights = tmp_path / 'weights'
  weights.mkdir()

  def local_branch(steps: int) -> str:
    work = tmp_path / f'campaign{steps}'
    (work / 'constant' / 'checkpoints').mkdir(parents=True)
    (work / 'campaign.json').write_text(json.dumps(
        {'models': {trained.name: {'cumulative_steps': 900}}, 'history': {}}))
    with checkpointing.manager(str(work / 'constant' / 'checkpoints')) as mgr:
      checkpointing.save(mgr, steps, {'step': np.zeros((), np.int32)})
    return str(work)

  ahead = local_branch(200)  # 900 + 200 > 1000: the GPU trained older weights
  with pytest.raises(ingest.IngestError, match=r'ahead of the returned weights .*1100 > 1000'):
    ingest.install_weights(str(returned), results, str(weights), ahead)
  assert not os.listdir(weights) and os.path.isdir(ahead)

  behind = local_branch(50)  # 950 < 1000: the GPU continued this branch
  assert ingest.install_weights(str(returned), results, str(weights), behind) == [trained.name]
  installed = models.load_model(str(weights / 'tiny-beta100.msgpack'))
  assert installed.fingerprint == trained.fingerprint
  assert not os.path.exists(behind)  # moved aside for `make train` to start from them
  assert [p for p in os.listdir(tmp_path) if p.startswith('campaign50-before-accelerator-')]
