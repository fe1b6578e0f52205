"""Optimizer steps whose loss or gradient is not finite: skipped, and a long run stops.

A NaN pixel or an overflow in one step must not reach the parameters or Adam's
moments, so such a step is skipped (`skip_nonfinite`). Many in a row mean that the
run has diverged or its data are broken; skipping them forever would end in a model
that silently stopped learning, so the training and adaptation loops read
`consecutive_nonfinite` on the host after each compiled call and stop with an error
once it reaches `MAX_CONSECUTIVE`.
"""

from __future__ import annotations

import numpy as np
import optax

# Non-finite steps in a row after which a loop stops with an error.
MAX_CONSECUTIVE = 20

# optax.apply_if_finite applies a non-finite update once more than
# `max_consecutive_errors` came in a row. Its counter saturates at the int32 maximum,
# so this bound means never: the loops stop long before.
_NEVER = int(np.iinfo(np.int32).max)


def skip_nonfinite(inner: optax.GradientTransformation) -> optax.GradientTransformation:
  """`inner`, with every step whose gradient is not finite replaced by a zero update
  (and `inner`'s state left as it was). The state counts the skipped steps."""
  return optax.apply_if_finite(inner, max_consecutive_errors=_NEVER)


def consecutive_nonfinite(opt_state: optax.ApplyIfFiniteState) -> np.ndarray:
  """Non-finite steps in a row up to the last one, int32[...] (one per model or video
  when the state is stacked). Waits for the step that produced `opt_state`."""
  return np.asarray(opt_state.notfinite_count)
