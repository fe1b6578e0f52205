"""Shared fixtures: a tiny random model and deterministic synthetic images.

Nothing here reads ../shared: a user's clone does not have it.
"""

from __future__ import annotations

import numpy as np
import pytest

import iac_jax
from iac_jax.codec import range_coding

_CODER = range_coding.available()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
  """Where the range coder is not installed (the accelerator lane: a current JAX, no
  TensorFlow), a test that reached it, in this process or a child, is reported as
  skipped. With the pinned stack the coder is there and nothing is skipped."""
  outcome = yield
  report = outcome.get_result()
  if _CODER or call.excinfo is None or not report.failed:
    return
  if "No module named 'tensorflow" in str(call.excinfo.getrepr()):
    report.outcome = 'skipped'
    report.longrepr = (str(item.path), item.location[1] or 0,
                       'Skipped: needs the range coder (tensorflow-compression-ops)')


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
  """A deterministic natural-ish uint8[H, W, 3]: smooth gradients, edges and noise."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
  base = np.stack([
      128 + 80 * np.sin(xx / 9.0 + seed) * np.cos(yy / 13.0),
      128 + 70 * np.cos((xx + yy) / 17.0),
      100 + 60 * ((xx // 16 + yy // 16) % 2),
  ], axis=-1)
  base += rng.normal(0, 6, base.shape)
  return np.clip(base, 0, 255).astype(np.uint8)


@pytest.fixture(scope='session')
def tiny_model() -> iac_jax.Model:
  return iac_jax.init_model('tiny', seed=0)


@pytest.fixture(scope='session')
def tiny_model_file(tmp_path_factory, tiny_model) -> str:
  path = str(tmp_path_factory.mktemp('models') / 'tiny-test.msgpack')
  iac_jax.save_model(tiny_model, path)
  return path


@pytest.fixture(scope='session')
def shipped_model() -> iac_jax.Model:
  """The default shipped model: trained, so its rates have realistic statistics."""
  return iac_jax.load_model(iac_jax.codec.models.DEFAULT_MODEL)


@pytest.fixture(scope='session')
def sample_image() -> np.ndarray:
  """The sample photo that ships with the package (held out of training)."""
  from iac_jax import demo  # pylint: disable=g-import-not-at-top
  from iac_jax.io import image_io  # pylint: disable=g-import-not-at-top
  return image_io.read_image(demo.SAMPLE_IMAGE)
