"""Synthetic static-camera clips: a fixed scene, a passing object, light drift, noise."""

import numpy as np
import pytest

from iac_jax.evaluation import static_camera
from tests.conftest import smooth_image


def _photos():
  return smooth_image(300, 400, seed=1), smooth_image(120, 90, seed=2)


def test_clip_is_a_static_scene_with_a_passing_object():
  scene, passer = _photos()
  clip = static_camera.clip(scene, passer, frames=6, height=128, width=192, seed=3,
                            object_size=48, noise_std=0.0, light_drift=0.0)
  assert clip.shape == (6, 128, 192, 3) and clip.dtype == np.uint8
  changed = np.any(clip != clip[:1], axis=(0, 3))  # pixels that ever differ from frame 0
  # Without noise or drift only the object's path changes: one band, not the frame.
  rows = np.flatnonzero(changed.any(axis=1))
  assert len(rows) >= 48 and np.all(np.diff(rows) == 1)
  assert 0.1 < changed.mean() < 0.6
  # The object moves left to right.
  first, last = [np.flatnonzero(np.any(f != static_camera.cover(scene, 128, 192), axis=(0, 2)))
                 for f in (clip[1], clip[-2])]
  assert first.mean() < last.mean()


def test_clip_is_deterministic_per_seed_and_noisy_per_frame():
  scene, passer = _photos()
  a = static_camera.clip(scene, passer, frames=3, height=64, width=128, seed=0, object_size=32)
  b = static_camera.clip(scene, passer, frames=3, height=64, width=128, seed=0, object_size=32)
  c = static_camera.clip(scene, passer, frames=3, height=64, width=128, seed=1, object_size=32)
  np.testing.assert_array_equal(a, b)
  assert np.any(a != c)
  with pytest.raises(ValueError, match='invalid clip'):
    static_camera.clip(scene, passer, frames=2, height=64, width=128, object_size=80)
