"""Many videos adapted by one compiled program: `vmap` over videos, sharded over devices.

Adaptation is a pure function of (global parameters, frames, rng, config), so a
batch of videos is `jax.vmap` of the single-video step, and a batch spread over
chips is that same program with its video axis laid out over a one-axis
`jax.sharding.Mesh` named 'videos' (global parameters replicated). XLA's SPMD
partitioner does the rest; there is no scheduler here.

Videos of different shapes are **bucketed**, not padded: a batch holds videos
whose padded frames have the same [T, H, W]. Padding frames or pixels would need
masks in the crop sampler, the rate terms and the distortion, and any slip there
would change a video's result; bucketing keeps every video's computation exactly
its own, so a video adapted in a batch gets what it would get alone (up to float
reassociation in batched convolutions). A bucket that does not fill the devices
is topped up with copies of its last video, whose results are dropped.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from iac_jax.adaptation import finetuning
from iac_jax.adaptation.finetuning import AdaptationConfig, AdaptationResult
from iac_jax.codec.configs import ModelConfig
from iac_jax.codec.hyperprior import DECODER_SIDE

VIDEO_AXIS = 'videos'


def video_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A one-axis mesh 'videos' over `devices` (default: this process's devices)."""
  devices = list(devices if devices is not None else jax.local_devices())
  return Mesh(np.array(devices), (VIDEO_AXIS,))


@functools.partial(jax.jit, static_argnames=('model_config', 'config'), donate_argnums=(0,))
def _run_many(carry, theta_global, frames, rngs, video_pixels, *,
              model_config: ModelConfig, config: AdaptationConfig):
  """`rngs.shape[1]` steps of every video: vmap over the leading (video) axis."""
  run = functools.partial(finetuning.run_steps, model_config=model_config, config=config)
  return jax.vmap(run, in_axes=(0, None, 0, 0, 0))(carry, theta_global, frames, rngs,
                                                  video_pixels)


def _buckets(shapes: Sequence[tuple[int, ...]], size: int) -> list[list[int]]:
  """Indices grouped by shape, in order of first appearance, at most `size` each."""
  by_shape = collections.defaultdict(list)
  for i, shape in enumerate(shapes):
    by_shape[tuple(shape)].append(i)
  return [idx[k:k + size] for idx in by_shape.values() for k in range(0, len(idx), size)]


def adapt_many(params: dict, videos: Sequence[jax.Array], rngs: Sequence[jax.Array],
               config: AdaptationConfig, model_config: ModelConfig,
               video_pixels: Sequence[int] | None = None, mesh: Mesh | None = None,
               videos_per_device: int = 1, steps_per_call: int | None = None,
               progress: Callable[[int, int, int], None] | None = None,
               ) -> list[AdaptationResult]:
  """Adapts each of `videos` (float32[T, H, W, 3] in [0, 1], H and W multiples of 64).

  Args:
    params: the global model's parameters (replicated on every device).
    videos, rngs: one frames array and one PRNG key per video; video i gets what
      `finetuning.adapt(params, videos[i], rngs[i], config, ...)` gives it.
    video_pixels: unpadded pixel count of each video (default: all its pixels).
    mesh: a one-axis mesh named 'videos' (default: `video_mesh()`).
    videos_per_device: K, videos per device in one compiled batch.
    steps_per_call: optimizer steps per compiled call (default: 1 on CPU, all on
      accelerators), as in `adapt`.
    progress: called as `progress(batch_index, num_batches, steps_done)`.

  Returns:
    One `AdaptationResult` per video, in input order.

  Raises:
    codec.DivergedError: as `adapt` does, for any video (which ends the whole call).
  """
  if len(videos) != len(rngs):
    raise ValueError(f'{len(videos)} videos but {len(rngs)} keys')
  if videos_per_device < 1:
    raise ValueError('videos_per_device must be at least 1')
  for v in videos:
    if v.ndim != 4 or v.shape[-1] != 3:
      raise ValueError(f'expected frames [T, H, W, 3], got {v.shape}')
  pixels = [int(p) for p in (video_pixels or [np.prod(v.shape[:3]) for v in videos])]
  if not config.method_spec.finetunes or config.steps == 0:
    return [finetuning.adapt(params, v, r, config, model_config)
            for v, r in zip(videos, rngs)]
  mesh = mesh or video_mesh()
  num_devices = mesh.devices.size
  batch_size = num_devices * videos_per_device
  sharded = NamedSharding(mesh, PartitionSpec(VIDEO_AXIS))
  replicated = NamedSharding(mesh, PartitionSpec())
  theta_global = jax.device_put({k: params[k] for k in DECODER_SIDE}, replicated)
  per_call = finetuning.chunk_size(
      config.steps, steps_per_call or finetuning.default_steps_per_call(config.steps))

  results: list[AdaptationResult | None] = [None] * len(videos)
  batches = _buckets([v.shape for v in videos], batch_size)
  for b, members in enumerate(batches):
    # Top up to a multiple of the device count with copies of the last video.
    fill = -len(members) % num_devices
    slots = members + [members[-1]] * fill
    stack = lambda xs: jax.device_put(jnp.stack(xs), sharded)
    frames = stack([jnp.asarray(videos[i]) for i in slots])
    keys = stack([finetuning.step_keys(rngs[i], config.steps) for i in slots])
    pix = stack([jnp.float32(pixels[i]) for i in slots])
    copies = len(slots)
    carry = jax.tree.map(lambda x: jax.device_put(jnp.stack([x] * copies), sharded),  # noqa: B023
                         finetuning.initial_carry(params, config))
    histories = []
    for start in range(0, config.steps, per_call):
      carry, metrics = _run_many(carry, theta_global, frames,
                                 keys[:, start:start + per_call], pix,
                                 model_config=model_config, config=config)
      histories.append(metrics)
      finetuning.stop_if_diverged(carry[1])  # any video of the batch
      if progress:
        progress(b, len(batches), start + per_call)
    trainable = jax.device_get(carry[0])
    histories = jax.device_get(histories)
    for slot, i in enumerate(members):
      take = lambda tree, s=slot: jax.tree.map(lambda x: x[s], tree)
      results[i] = finetuning.finish(take(trainable), [take(h) for h in histories], config)
  return results
