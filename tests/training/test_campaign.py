"""The training campaign: `make train` continues from shipped weights and writes new ones."""

import json
import os
import subprocess

import jax
import numpy as np
import pytest
from PIL import Image

import iac_jax
from iac_jax.codec import models, weight_grid
from iac_jax.io import image_io
from iac_jax.training import campaign
from tests.conftest import smooth_image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _ship_tiny_models(weights_dir, betas):
  for i, beta in enumerate(betas):
    start = iac_jax.init_model('tiny', seed=i, name=f'tiny-beta{beta:g}')
    meta = {'beta': beta, 'cumulative_steps': 1000, 'cumulative_hours': 0.5,
            'cumulative_cpu_hours': 0.75, 'history': ['an earlier run']}
    models.save_model(models.Model(start.name, start.config, start.params, meta),
                      str(weights_dir / f'{start.name}.msgpack'))


def _make_train(shared, weights_dir, workdir, curve, steps, extra=''):
  flags = (f'{extra} --config=tiny --betas=10,100 --max_steps={steps} --decay_steps=2 '
           f'--warmup_steps=2 --batch_size=2 --crop_size=64 --holdout=1 --eval_every=2 '
           f'--weights_dir={weights_dir} --workdir={workdir} --curve={curve}')
  proc = subprocess.run(['make', '-C', ROOT, 'train', f'SHARED={shared}', 'HOURS=1',
                         f'TRAIN_FLAGS={flags}'], capture_output=True, text=True,
                        timeout=900, check=False)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  return proc


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, '.venv', '.installed')),
                    reason='make train runs in the project venv (make test creates it)')
def _float16_valued(a) -> bool:
  a = np.asarray(a, np.float32)
  return np.array_equal(a.astype(np.float16).astype(np.float32), a)


def test_make_train_continues_from_shipped_weights(tmp_path):
  photos = tmp_path / 'shared' / 'data' / 'train_images'
  photos.mkdir(parents=True)
  for s in range(3):
    Image.fromarray(smooth_image(96, 120, seed=s)).save(photos / f'p{s}.png')
  weights = tmp_path / 'weights'
  weights.mkdir()
  _ship_tiny_models(weights, (10.0, 100.0))
  before = {b: models.load_model(str(weights / f'tiny-beta{b}.msgpack')) for b in (10, 100)}
  curve = tmp_path / 'curve.jsonl'
  _make_train(tmp_path / 'shared', weights, tmp_path / 'work', curve, steps=4)
  models._CACHE.clear()  # pylint: disable=protected-access
  for b in (10, 100):
    after = models.load_model(str(weights / f'tiny-beta{b}.msgpack'))
    meta = json.loads((weights / f'tiny-beta{b}.json').read_text())
    assert meta['cumulative_steps'] == 1000 + 4 + 2  # constant steps + the decay
    assert meta['cumulative_hours'] > 0.5 and meta['cumulative_cpu_hours'] > 0.75
    assert meta['history'][0] == 'an earlier run' and len(meta['history']) == 2
    assert meta['beta'] == b and meta['data'].startswith('2 photos')
    assert after.fingerprint != before[b].fingerprint
    # Shipped weights are on their 9-bit grids (rounding again changes nothing), which
    # float16 does not hold.
    jax.tree.map(np.testing.assert_array_equal, after.params,
                 weight_grid.grid_precision(after.params))
    assert not all(_float16_valued(a) for a in jax.tree.leaves(after.params))
  records = [json.loads(line) for line in curve.read_text().splitlines()]
  assert {r['branch'] for r in records} == {'constant', 'snapshot'}
  assert {r['image'] for r in records} == {'p2.png'}  # the held-out photo only
  assert max(r['cumulative_steps'] for r in records) == 1006
  assert all(r['bpp_real'] > 0 for r in records)

  # A second run on the same machine continues the constant-rate branch (not the
  # decayed snapshot) and counts from where that branch started.
  _make_train(tmp_path / 'shared', weights, tmp_path / 'work', curve, steps=6)
  meta = json.loads((weights / 'tiny-beta10.json').read_text())
  assert meta['cumulative_steps'] == 1000 + 6 + 2
  assert len(meta['history']) == 2  # the branch's start history plus this run

  # --nosnapshot advances the branch and leaves the shipped weights alone.
  shipped = (weights / 'tiny-beta10.msgpack').read_bytes()
  proc = _make_train(tmp_path / 'shared', weights, tmp_path / 'work', curve, steps=8,
                     extra='--nosnapshot')
  assert 'no snapshot this run' in proc.stderr
  assert (weights / 'tiny-beta10.msgpack').read_bytes() == shipped
  assert json.loads((weights / 'tiny-beta10.json').read_text())['cumulative_steps'] == 1008

  # The branch, exported (what `make accelerator-pack` carries to a GPU), is where a
  # campaign elsewhere starts: it counts on from the branch, not from the shipped weights.
  cfg = campaign.CampaignConfig(config_name='tiny', betas=(10.0, 100.0))
  work = str(tmp_path / 'work')
  assert campaign.branch_cumulative_steps(work) == {'tiny-beta10': 1008, 'tiny-beta100': 1008}
  exported = tmp_path / 'exported'
  out = campaign.export_branch(cfg, work, str(exported), str(weights))
  assert [m.name for m in out] == ['tiny-beta10', 'tiny-beta100']
  meta = json.loads((exported / 'tiny-beta10.json').read_text())
  assert meta['cumulative_steps'] == 1008 and meta['beta'] == 10.0
  assert 'exported undecayed' in meta['history'][-1] and meta['history'][0] == 'an earlier run'
  branch = models.load_model(str(exported / 'tiny-beta10.msgpack'))
  assert all(_float16_valued(a) for a in jax.tree.leaves(branch.params))  # to train on
  assert branch.fingerprint not in (models.load_model(str(weights / 'tiny-beta10.msgpack')
                                                      ).fingerprint, before[10].fingerprint)
  _make_train(tmp_path / 'shared', exported, tmp_path / 'elsewhere', curve, steps=2)
  assert json.loads((exported / 'tiny-beta10.json').read_text())['cumulative_steps'] == 1012
  # No branch, nothing exported.
  assert campaign.export_branch(cfg, str(tmp_path / 'none'), str(tmp_path / 'x')) == []
  assert campaign.branch_cumulative_steps(str(tmp_path / 'none')) == {}


def test_only_a_fresh_adam_is_warmed_up():
  from iac_jax.training import campaign, trainer  # pylint: disable=g-import-not-at-top
  cfg = campaign.CampaignConfig(learning_rate=1e-4, warmup_steps=200)
  fresh = campaign.constant_phase(cfg, seed=0, resumed_at=None)
  assert trainer.learning_rate_at(fresh, 0) == pytest.approx(1e-4 / 200)
  assert trainer.learning_rate_at(fresh, 199) == pytest.approx(1e-4)
  # The branch resumes with its Adam moments: full rate from its first step.
  resumed = campaign.constant_phase(cfg, seed=0, resumed_at=3800)
  assert trainer.learning_rate_at(resumed, 3800) == pytest.approx(1e-4)


def test_downscale_long_side():
  image = smooth_image(300, 200)
  small = image_io.downscale_long_side(image, 120)
  assert small.shape == (120, 80, 3) and small.dtype == np.uint8
  assert image_io.downscale_long_side(image, 512) is image


def test_learning_curve_averages_the_held_out_photos_per_evaluation(tmp_path):
  from iac_jax.evaluation import learning_curve  # pylint: disable=g-import-not-at-top
  rec = lambda steps, branch, image, bpp, psnr, hours: {
      'model': 'small-beta100', 'image': image, 'branch': branch, 'cumulative_steps': steps,
      'cumulative_cpu_hours': hours, 'bpp_real': bpp, 'psnr_db': psnr}
  records = [rec(500, 'constant', 'a', 0.2, 30.0, 1.0), rec(500, 'constant', 'b', 0.4, 32.0, 1.0),
             rec(700, 'snapshot', 'a', 0.1, 31.0, 1.5), rec(700, 'snapshot', 'b', 0.3, 33.0, 1.5),
             dict(rec(500, 'constant', 'a', 9.0, 9.0, 1.0), model='small-beta10')]
  rows = learning_curve.points(records, 'small-beta100')
  assert [(r['cumulative_steps'], r['branch'], r['images']) for r in rows] == [
      (500, 'constant', 2), (700, 'snapshot', 2)]
  np.testing.assert_allclose([r['psnr_db'] for r in rows], [31.0, 32.0])
  np.testing.assert_allclose([r['bpp'] for r in rows], [0.3, 0.2])
  assert '| small-beta100 | 0 | snapshot | 700 | 1.50 | 0.2000 | 32.00 |' in learning_curve.markdown(
      rows)
  learning_curve.plot({'small-beta100': rows}, str(tmp_path / 'curve.png'))
  assert (tmp_path / 'curve.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_a_run_from_older_weights_starts_a_lineage_of_its_own():
  from iac_jax.evaluation import learning_curve  # pylint: disable=g-import-not-at-top
  rec = lambda steps, branch, hours, psnr: {
      'model': 'small-beta100', 'image': 'a', 'branch': branch, 'cumulative_steps': steps,
      'cumulative_cpu_hours': hours, 'bpp_real': 0.2, 'psnr_db': psnr}
  # Lineage 0 runs to 3,000 steps; its snapshots run their decay ahead of the branch
  # (1,500 after the constant 1,000), which is no new lineage. A fresh machine then
  # continues from the 1,500-step snapshot: its constant steps go back.
  records = [rec(1000, 'constant', 1.0, 29.0), rec(1500, 'snapshot', 1.5, 30.0),
             rec(1200, 'constant', 1.3, 29.2), rec(3000, 'constant', 3.0, 30.0),
             rec(3500, 'snapshot', 9.0, 31.0),
             rec(2500, 'constant', 2.5, 29.5), rec(3000, 'snapshot', 3.0, 30.4)]
  assert learning_curve.lineages(records, 'small-beta100') == [0, 0, 0, 0, 0, 1, 1]
  rows = learning_curve.points(records, 'small-beta100')
  assert [(r['lineage'], r['cumulative_steps']) for r in rows] == [
      (0, 1000), (0, 1200), (0, 1500), (0, 3000), (0, 3500), (1, 2500), (1, 3000)]
  # The plateau test reads the lineage that reached the most CPU hours.
  assert learning_curve.recent_gain(rows, hours=7.5)['gain_db'] == pytest.approx(1.0)
  # ... and says so of the newest lineage, the shipped weights' own, where it differs.
  assert learning_curve.recent_gain(rows, hours=1.0, lineage=1) is None  # one snapshot
  rows += [{**rows[-1], 'cumulative_steps': 2000, 'cumulative_cpu_hours': 2.0, 'psnr_db': 30.0}]
  assert learning_curve.recent_gain(rows, hours=1.0, lineage=1)['gain_db'] == pytest.approx(0.4)
  words = learning_curve.recent_gain_line(rows, hours=1.0)
  assert 'newest lineage (1), over the last 1 CPU hours of snapshots (2.00 -> 3.00' in words
  assert 'newest lineage (1): not 7.5 CPU hours' in learning_curve.recent_gain_line(rows, 7.5)


def test_recent_gain_is_measured_on_the_snapshots_over_the_last_hours():
  from iac_jax.evaluation import learning_curve  # pylint: disable=g-import-not-at-top
  row = lambda branch, hours, psnr: {'branch': branch, 'cumulative_cpu_hours': hours,
                                     'psnr_db': psnr}
  rows = [row('snapshot', 2.0, 29.0), row('snapshot', 6.0, 30.0), row('constant', 9.0, 35.0),
          row('snapshot', 10.0, 30.5)]
  gain = learning_curve.recent_gain(rows)  # at 5.0 h: 29.75, interpolated
  assert gain['from_hours'] == 5.0 and gain['to_hours'] == 10.0
  assert gain['gain_db'] == pytest.approx(0.75) and not gain['plateau']
  assert 'no plateau' in learning_curve.recent_gain_line(rows)
  flat = rows[:2] + [row('snapshot', 11.0, 30.05)]
  assert learning_curve.recent_gain(flat)['plateau']
  assert learning_curve.recent_gain(rows[:2]) is None  # reaches back 4 hours only
  assert 'not enough snapshots' in learning_curve.recent_gain_line(rows[:2])


def test_gain_per_doubling_fits_the_snapshots_of_the_last_doubling_of_steps():
  from iac_jax.evaluation import learning_curve  # pylint: disable=g-import-not-at-top
  row = lambda lineage, branch, steps, psnr: {'lineage': lineage, 'branch': branch,
                                              'cumulative_steps': steps, 'psnr_db': psnr}
  # Snapshots on 30 + 0.5 * log2(steps / 1000), two lineages; the constant branch
  # (off the line) and the snapshot before the last doubling (1,000 < 4,000 / 2) are
  # left out.
  rows = [row(0, 'snapshot', 1000, 20.0), row(0, 'snapshot', 2000, 30.5),
          row(0, 'constant', 3000, 10.0), row(0, 'snapshot', 4000, 31.0),
          row(1, 'snapshot', 2828, 30.0 + 0.5 * 1.5)]
  g = learning_curve.gain_per_doubling(rows)
  assert (g['from_steps'], g['to_steps'], g['snapshots']) == (2000, 4000, 3)
  assert g['db_per_doubling'] == pytest.approx(0.5, abs=1e-3)
  assert g['steps_for'](1.0) == pytest.approx(16000, rel=1e-3)  # two doublings
  assert '+0.50 dB held-out PSNR per doubling' in learning_curve.gain_per_doubling_line(rows)
  assert learning_curve.gain_per_doubling(rows[:3]) is None  # two snapshots in the window
  assert 'fewer than three' in learning_curve.gain_per_doubling_line(rows[:3])
  flat = [row(0, 'snapshot', s, 30.0 - s / 1e6) for s in (2000, 3000, 4000)]
  assert learning_curve.gain_per_doubling(flat)['steps_for'](1.0) == float('inf')


def test_a_slow_spell_does_not_end_the_constant_phase_before_its_time():
  # One hour, a 500-step decay; steps take 1 s, then 20 s for a while (a job beside).
  budget = campaign.TimeBudget(3600, 500, start_time=0.0, start_step=0)
  assert not budget.spent(100, 200.0)  # compilation: no step time from it
  assert not budget.spent(200, 300.0)  # 1 s/step: decay 500 s
  assert not budget.spent(300, 2300.0)  # 20 s/step; the latest pace would stop here
  assert not budget.spent(400, 3000.0)  # 3000 s + 500 x 1 s is still inside the hour
  assert budget.spent(500, 3100.0)  # 3100 + 500 s of decay reaches the hour
  # Without a snapshot there is no decay to leave room for.
  budget = campaign.TimeBudget(3600, 0, start_time=0.0, start_step=0)
  assert not budget.spent(100, 3000.0) and not budget.spent(200, 3500.0)
  assert budget.spent(300, 3600.0)


def test_the_first_interval_holds_compilation_and_counts_only_against_the_budget():
  budget = campaign.TimeBudget(3600, 500, start_time=0.0, start_step=0)
  assert not budget.spent(10, 3000.0)  # 300 s/step, compiling: no decay estimate yet
  assert budget.spent(20, 3600.0)
