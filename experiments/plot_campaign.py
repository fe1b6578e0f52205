"""The campaign's learning curve from its curve file.

  python experiments/plot_campaign.py --curve=results/global_models/campaign_log.jsonl

Writes learning_curve.png and learning_curve.md beside the curve file: held-out PSNR
and bpp of every model against the campaign's cumulative CPU hours, and what each
gained over its last 5 CPU hours of snapshots (issue 12's plateau test) and per doubling
of its cumulative steps.
"""

from __future__ import annotations

import os

from absl import app, flags

from iac_jax.evaluation import learning_curve
from iac_jax.io import atomic_io

_CURVE = flags.DEFINE_string('curve', 'results/global_models/campaign_log.jsonl',
                             'Curve file written by experiments/train_campaign.py.')


def main(argv):
  del argv
  records = learning_curve.read(_CURVE.value)
  if not records:
    raise app.UsageError(f'{_CURVE.value} has no records')
  models = sorted({r['model'] for r in records},
                  key=lambda m: -float(m.rsplit('beta', 1)[-1]))
  curves = {m: learning_curve.points(records, m) for m in models}
  out_dir = os.path.dirname(os.path.abspath(_CURVE.value))
  learning_curve.plot(curves, os.path.join(out_dir, 'learning_curve.png'))
  table = ''.join(learning_curve.markdown(rows) + '\n' + learning_curve.recent_gain_line(rows)
                  + learning_curve.gain_per_doubling_line(rows) + '\n'
                  for rows in curves.values())
  atomic_io.write_bytes(os.path.join(out_dir, 'learning_curve.md'), table.encode())
  print(table)


if __name__ == '__main__':
  app.run(main)
