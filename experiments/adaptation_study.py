"""The adaptation study: full-model vs encoder-only adaptation, per setting and step budget.

  .venv/bin/python experiments/adaptation_study.py --clips=bridge,cup \
      --settings=base --steps=100,300,1000

Writes <output_dir>/study.csv (one row per clip, model, method, setting, seed and step
budget, from real bitstreams), comparisons.md (full against encoder-only: BD-PSNR
over the models' betas and per-beta differences) and gain_vs_steps.png. Resumable:
rows already in study.csv are not run again. The clips: `bridge` and `cups` are
synthetic static-camera clips (1280x720, 20 I-frames, `iac_jax.evaluation.static_camera`)
made from photos of --data's train_images; `cup` and `box` are the real fixed-camera
clips of --data's videos (640x480; 17 and 31 I-frames at 2 fps).
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from iac_jax.codec import models
from iac_jax.evaluation import adaptation_study as study
from iac_jax.evaluation import rd_figures, static_camera
from iac_jax.io import atomic_io, image_io, video

# name: (scene photo, passing photo, seed) for synthetic clips; a video file otherwise.
CLIPS = {
    'bridge': ('lomiri_Bridge_by_Sander_Klootwijk.png', 'mate_Wood.png', 0),
    'cups': ('plasma_ColorfulCups.png', 'skimage_astronaut.png', 1),
    'cup': 'cup_640x480.mp4',
    'box': 'box_640x480.mp4',
}

_DATA = flags.DEFINE_string('data', '../shared/data', 'Folder with train_images/ and videos/.')
_CLIPS = flags.DEFINE_list('clips', ['bridge', 'cup'], f'Clips, of {list(CLIPS)}.')
_MODELS = flags.DEFINE_list('models', ['small-beta500', 'small-beta100', 'small-beta30'],
                            'Models (one beta each: the BD curves run over them).')
_METHODS = flags.DEFINE_list('methods', ['encoder', 'full'], 'Methods: encoder, full.')
_SETTINGS = flags.DEFINE_list('settings', ['base'], f'Settings, of {list(study.SETTINGS)}.')
_STEPS = flags.DEFINE_list('steps', ['100', '300', '1000'], 'Step budgets.')
_SEEDS = flags.DEFINE_list('seeds', ['0'], 'Seeds of crops and noise.')
_FRAMES = flags.DEFINE_integer('synthetic_frames', 20, 'I-frames of a synthetic clip.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'results/adaptation_study', 'Output folder.')


def load_clip(name: str):
  spec = CLIPS[name]
  if isinstance(spec, str):
    frames, _ = video.read_video(os.path.join(_DATA.value, 'videos', spec))
    return frames
  scene, passer, seed = spec
  read = lambda f: image_io.load_rgb(os.path.join(_DATA.value, 'train_images', f))
  return static_camera.clip(read(scene), read(passer), frames=_FRAMES.value, seed=seed)


def write_summary(rows):
  comparisons = study.compare(rows)
  out = _OUTPUT_DIR.value
  atomic_io.write_bytes(os.path.join(out, 'comparisons.md'),
                        study.markdown(comparisons).encode())
  if any(c['setting'] == 'base' for c in comparisons):
    study.plot_gain_vs_steps(comparisons, os.path.join(out, 'gain_vs_steps.png'))
  for setting, steps in (('base', 300), ('default', 300)):
    panels = study.rd_panels(rows, setting, steps)
    if panels:
      rd_figures.plot_rd(panels, os.path.join(out, f'rd_{setting}_{steps}.png'))


def main(argv):
  del argv
  for name in _CLIPS.value:
    if name not in CLIPS:
      raise app.UsageError(f'unknown clip {name!r}; choose from {list(CLIPS)}')
  settings = [study.setting_by_name(s) for s in _SETTINGS.value]
  steps = sorted(int(s) for s in _STEPS.value)
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  path = os.path.join(_OUTPUT_DIR.value, 'study.csv')
  rows = study.read_rows(path)
  done = {study.row_key(r) for r in rows}

  def on_row(row):
    rows.append(row)
    done.add(study.row_key(row))
    study.write_rows(path, rows)

  for clip_name in _CLIPS.value:
    frames = None
    for model_name in _MODELS.value:
      model = models.load_model(model_name)
      beta = models.default_beta(model)
      for setting in settings:
        for method in _METHODS.value:
          if method == 'encoder' and setting.anchor != setting.name:
            continue  # its anchor is the encoder-only run
          for seed in (int(s) for s in _SEEDS.value):
            missing = [s for s in steps if (clip_name, model_name, method, setting.name,
                                            seed, s) not in done]
            if not missing:
              continue
            if frames is None:
              frames = load_clip(clip_name)
              logging.info('clip %s: %s', clip_name, frames.shape)
            study.run_trajectory(model, beta, clip_name, frames, method, setting, missing,
                                 seed=seed, on_row=on_row, log=logging.info)
            write_summary(rows)
  write_summary(rows)
  print(study.markdown(study.compare(rows)))


if __name__ == '__main__':
  app.run(main)
