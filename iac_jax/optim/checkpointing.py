"""Orbax checkpoints of pytrees, shared by training and adaptation.

Trees go in and come out as NumPy arrays: Orbax 0.11's jax.Array path calls a
`jax.monitoring` function that JAX 0.5 lacks. Orbax writes each step into a
temporary directory and renames it when complete, so a process killed mid-save
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp


def manager(directory: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(directory),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))


def save(mgr: ocp.CheckpointManager, step: int, tree: Any) -> None:
  """Saves `tree` as step `step` and waits until it is complete on disk."""
  mgr.save(step, args=ocp.args.StandardSave(jax.device_get(tree)))
  mgr.wait_until_finished()


def latest_step(directory: str) -> int | None:
  """The step of the latest complete checkpoint under `directory`, or None."""
  if not os.path.isdir(directory):
    return None
  with manager(directory) as mgr:
    return mgr.latest_step()


def restore_latest(directory: str, template: Any) -> Any | None:
  """The latest checkpoint under `directory` shaped like `template`, or None."""
  if not os.path.isdir(directory):
    return None
  with manager(directory) as mgr:
    step = mgr.latest_step()
    if step is None:
      return None
    restored = mgr.restore(step, args=ocp.args.StandardRestore(jax.device_get(template)))
  # Copies made by XLA, not the host transfers themselves: on CPU (jaxlib 0.5.3) a
  # resumed run that donated the transferred buffers to a jitted step loaded from JAX's
  # persistent compilation cache aborted with a corrupted heap; with these copies it
  # does not (tests/test_interruption.py runs under that cache).
  return _copy(jax.tree.map(jnp.asarray, restored))


@jax.jit
def _copy(tree: Any) -> Any:
  return jax.tree.map(jnp.copy, tree)


def claim(directory: str, identity: dict) -> None:
  """Marks `directory` as holding checkpoints of the run described by `identity`;
  raises ValueError if it already holds another run's."""
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, 'run.json')
  text = json.dumps(identity, sort_keys=True)
  if os.path.exists(path):
    with open(path) as f:
      if f.read() != text:
        raise ValueError(f'{directory} holds checkpoints of a different run; '
                         'use another directory or delete it')
    return
  from iac_jax.io import atomic_io  # pylint: disable=g-import-not-at-top
  atomic_io.write_bytes(path, text.encode())
