"""The adaptation study: trajectories coded at several budgets, and full vs encoder."""

import numpy as np
import pytest

from iac_jax.evaluation import adaptation_study as study
from tests.conftest import smooth_image


def _row(method, setting, beta, bpp, psnr, steps=300):
  mse = 255.0**2 / 10 ** (psnr / 10)
  return {'clip': 'c', 'model': f'm{beta:g}', 'method': method, 'setting': setting,
          'seed': 0, 'steps': steps, 'beta': beta, 'bpp': bpp, 'psnr_db': psnr,
          'mse_255': mse, 'update_bits': 1000 if method == 'full' else 0}


def test_compare_pairs_full_with_its_anchor_encoder_rows():
  enc = [(500, 0.10, 30.0), (100, 0.20, 32.0), (30, 0.40, 34.0)]
  rows = [_row('encoder', 'base', *e) for e in enc]
  rows += [_row('full', 'base', b, r, p + 1.0) for b, r, p in enc]  # +1 dB at equal rate
  rows += [_row('encoder', 'decay', b, r, p - 5.0) for b, r, p in enc]
  rows += [_row('full', 'decay', b, r * 1.1, p - 5.0) for b, r, p in enc]  # 10% more rate
  rows += [_row('full', 'synthesis', 100, 0.2, 31.0)]  # one beta: no BD
  by = {c['setting']: c for c in study.compare(rows)}
  assert by['base']['bd_psnr_db'] == pytest.approx(1.0, abs=1e-6)
  assert by['base']['d_psnr_db'] == pytest.approx([1.0, 1.0, 1.0])
  assert all(dj < 0 for dj in by['base']['d_j'])  # better at equal rate: lower J
  # 'decay' is compared with the encoder rows of its own schedule, not base's.
  assert by['decay']['d_psnr_db'] == pytest.approx([0.0, 0.0, 0.0])
  assert by['decay']['d_bpp_pct'] == pytest.approx([10.0, 10.0, 10.0])
  assert by['decay']['d_j'] == pytest.approx([30 * 0.04, 100 * 0.02, 500 * 0.01])
  assert np.isnan(by['synthesis']['bd_psnr_db']) and by['synthesis']['betas'] == [100.0]
  assert by['synthesis']['d_psnr_db'] == pytest.approx([-1.0])
  assert '| c | base | 300 | 0 | +1.00 dB |' in study.markdown(study.compare(rows))


def test_a_trajectory_codes_each_budget_from_real_bitstreams(tiny_model):
  frames = np.stack([smooth_image(64, 64, seed=s) for s in range(2)])
  seen = []
  rows = study.run_trajectory(tiny_model, 10.0, 'clip', frames, 'full',
                              study.SETTINGS['base'], [1, 3], crop_size=0,
                              on_row=seen.append, log=lambda _: None)
  assert [r['steps'] for r in rows] == [1, 3] and seen == rows
  for r in rows:
    assert r['update_bits'] > 0 and r['bpp'] > r['model_bpp'] > 0
    # PSNR is the mean over frames; from the mean MSE it is within a fraction of a dB.
    assert r['psnr_db'] == pytest.approx(10 * np.log10(255**2 / r['mse_255']), abs=0.5)
  decay = study.config_for(study.SETTINGS['decay'], 'encoder', 100, 10.0)
  assert decay.decay_at == 0.8 and decay.method == 'encoder'
  # Only the encoder-side optimizer carries over to the encoder-only anchor.
  anchor = study.config_for(study.SETTINGS['delta-lr1e-3'], 'encoder', 100, 10.0)
  assert anchor.delta_learning_rate is None
  assert study.config_for(study.SETTINGS['t0.01'], 'full', 100, 10.0).prior.t == 0.01
