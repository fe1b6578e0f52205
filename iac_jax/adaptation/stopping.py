"""When to stop adapting: the RDM loss has stopped improving, or time is up.

Per-step losses are noisy (each step sees other random crops and fresh noise), so
the rule never looks at single steps. The steps are cut into windows of `window`
steps; a window *improves* when its mean loss is below the level of the last
improvement by more than `min_improvement` (relative) and by more than twice the
standard error of its own mean. Adaptation stops once `patience` windows in a row
have not improved. The rule is checked only at window boundaries and is a
function of the loss history alone, so where it stops does not depend on how the
steps were chunked into compiled calls (`adapt` makes its calls divide the window).

`max_seconds` caps the encode time; it too is checked at window boundaries (so the
cap can be overrun by up to one window) and is, unlike the loss rule, not
reproducible from run to run.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class PlateauStop:
  """Stop on a plateau of the loss, or after `max_seconds` (0 = no cap).

  Attributes:
    window: steps per window (the unit of every decision).
    min_improvement: how much lower (relative) a window's mean loss must be than the
      best earlier window's to count as an improvement.
    patience: windows in a row without improvement before stopping.
    max_seconds: wall-clock cap on the adaptation, 0 for none.
  """

  window: int = 50
  min_improvement: float = 0.002
  patience: int = 2
  max_seconds: float = 0.0

  def __post_init__(self):
    if self.window < 1 or self.patience < 1 or self.min_improvement < 0 or self.max_seconds < 0:
      raise ValueError(f'invalid stopping rule {self}')

  def plateaued(self, losses: np.ndarray) -> bool:
    """Whether the loss history `losses` (one value per step done, a multiple of
    `window` long) has gone `patience` windows without improving."""
    count = len(losses) // self.window
    if count <= self.patience:
      return False
    windows = np.asarray(losses[:count * self.window], np.float64).reshape(count, -1)
    means = windows.mean(1)
    # A window's mean is itself noisy: an improvement must also exceed twice its
    # standard error, or noise alone would keep resetting the count.
    noise = 2 * windows.std(1, ddof=1) / np.sqrt(self.window) if self.window > 1 else 0 * means
    best = means[0]
    since = 0
    for mean, error in zip(means[1:], noise[1:]):
      if mean < best - max(self.min_improvement * abs(best), error):
        best, since = mean, 0
      else:  # `best` stays the last real improvement: slow gains add up against it
        since += 1
    return since >= self.patience

  def should_stop(self, losses: np.ndarray, seconds: float) -> bool:
    """Checked after `len(losses)` steps; only ever true at a window boundary."""
    if not len(losses) or len(losses) % self.window:
      return False
    if self.max_seconds and seconds >= self.max_seconds:
      return True
    return self.plateaued(losses)
