"""Instance-adaptive video coding: adapt, send the update, then code the I-frames.

Stream: header (kind video, frame rate of the coded frames), the update section
('U': the quantized decoder-side update, empty when nothing is sent), then per frame
a 'Z' and a 'Y' section. The encoder codes every frame with the parameters the
decoder will rebuild (`theta_global + t k`, computed by the same NumPy function), so
decoded frames equal the encoder's reconstruction exactly (`decoding.decode` is the
receiver).
"""

from __future__ import annotations

import dataclasses
import fractions
import time

import jax
import jax.numpy as jnp
import numpy as np

from iac_jax.adaptation import finetuning, update_coding, update_selection
from iac_jax.adaptation.finetuning import AdaptationConfig
from iac_jax.adaptation.stopping import PlateauStop
from iac_jax.codec import bitstream, image_codec
from iac_jax.codec.models import Model, default_beta


@dataclasses.dataclass(frozen=True)
class VideoEncoding:
  """A coded video and what it cost.

  Attributes:
    data: the bitstream.
    reconstruction: uint8[T, H, W, 3], what the decoder will output.
    update_bits: bits of the update section payload (0 when none is sent).
    static_bits: coded bits an all-zero update of the sent parameters would cost.
    frame_bits: int[T], bits of each frame's z and y payloads.
    history: per adaptation step: loss, bpp, model_bpp, model_bits, mse_255.
    adapt_seconds, total_seconds: wall time of the adaptation and of everything.
    update_choice: with `config.choose_update`, which groups were sent, whether the
      global encoder replaced the adapted one, and the RD cost of each candidate
      (`update_selection.Choice`), else None.
  """

  data: bytes
  reconstruction: np.ndarray
  update_bits: int
  static_bits: float
  frame_bits: np.ndarray
  history: dict
  adapt_seconds: float
  total_seconds: float
  update_choice: update_selection.Choice | None = None


def check_frames(frames: np.ndarray) -> np.ndarray:
  frames = np.asarray(frames)
  if frames.dtype != np.uint8:
    raise TypeError(f'expected uint8 frames, got dtype {frames.dtype}')
  if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape[:3]) < 1:
    raise ValueError(f'expected frames [T, H, W, 3] with T, H, W >= 1, got {frames.shape}')
  return frames


def _fps_fraction(fps: float) -> tuple[int, int]:
  f = fractions.Fraction(fps).limit_denominator(1001 * 1000)
  if f <= 0 or f.numerator >= 1 << 32 or f.denominator >= 1 << 32:
    raise ValueError(f'invalid frame rate {fps}')
  return f.numerator, f.denominator


def padded_input(frames: np.ndarray) -> jax.Array:
  """uint8 frames[T, H, W, 3] -> float32 in [0, 1], edge-padded to multiples of 64."""
  frames = check_frames(frames)
  return jnp.asarray(np.stack([image_codec.pad_to_multiple(f) for f in frames]),
                     jnp.float32) / 255.0


def encode_video_detailed(model: Model, frames: np.ndarray, fps: float,
                          config: AdaptationConfig, seed: int = 0,
                          progress=None, checkpoint_dir: str | None = None,
                          stop: PlateauStop | None = None) -> VideoEncoding:
  """Adapts `model` to uint8 frames[T, H, W, 3] per `config`, then codes them.

  `progress(steps_done, metrics)` is called during adaptation (see `adapt`); with
  `checkpoint_dir` the adaptation checkpoints there and resumes after a crash; with
  `stop` it ends once the loss has plateaued (`stopping.PlateauStop`).
  """
  start = time.perf_counter()
  frames = check_frames(frames)
  t, h, w, _ = frames.shape
  result = finetuning.adapt(model.params, padded_input(frames), jax.random.PRNGKey(seed),
                            config, model.config, video_pixels=t * h * w, progress=progress,
                            checkpoint_dir=checkpoint_dir, stop=stop)
  return encode_adapted(model, frames, fps, config, result, seed, start)


def encode_adapted(model: Model, frames: np.ndarray, fps: float, config: AdaptationConfig,
                   result: finetuning.AdaptationResult, seed: int = 0,
                   start: float | None = None) -> VideoEncoding:
  """Codes uint8 frames[T, H, W, 3] with the outcome of an adaptation (`adapt` or
  `adapt_many`): the update section, then each frame's z and y."""
  start = time.perf_counter() if start is None else start
  adapt_seconds = time.perf_counter() - start
  frames = check_frames(frames)
  t, h, w, _ = frames.shape
  rng = jax.random.PRNGKey(seed)
  theta_global = update_coding.decoder_side(model.params)
  ints, choice = result.update_ints, None
  encoder = jax.tree.map(np.asarray, result.encoder_params)
  if config.choose_update and (ints is not None or config.method_spec.finetunes):
    choice = update_selection.choose(model.params, encoder, ints, config.prior,
                                     padded_input(frames), model.config, config.beta,
                                     video_pixels=t * h * w)
    ints = choice.ints
    if choice.global_encoder:
      encoder = {k: model.params[k] for k in encoder}
  if ints is not None:
    update_payload = update_coding.encode_update(ints, config.prior)
    theta = update_coding.apply_update(theta_global, ints, config.prior.t)
  else:
    update_payload, theta = b'', theta_global
  adapted = Model(model.name, model.config, {**model.params, **encoder, **theta})

  sections = [bitstream.Section(image_codec.TAG_UPDATE, update_payload)]
  recon, frame_bits = [], []
  optimizes_latents = config.method_spec.optimizes_latents
  x = padded_input(frames) if optimizes_latents else None
  for i in range(t):
    latents = None
    if optimizes_latents:
      latents = finetuning.optimize_latents(
          adapted.params, x[i:i + 1], jax.random.fold_in(rng, i),
          model_config=model.config, steps=max(config.steps, 1),
          learning_rate=config.latent_learning_rate, beta=config.beta)
    frame_sections, frame_recon = image_codec.encode_frame(adapted, frames[i], latents)
    sections += frame_sections
    recon.append(frame_recon)
    frame_bits.append(8 * sum(len(s.payload) for s in frame_sections))
  header = image_codec.stream_header(model, bitstream.KIND_VIDEO, t, h, w, _fps_fraction(fps))
  data = bitstream.pack(header, sections)
  return VideoEncoding(
      data=data, reconstruction=np.stack(recon), update_bits=8 * len(update_payload),
      static_bits=update_coding.static_bits(model.params, config.prior),
      frame_bits=np.asarray(frame_bits), history=result.history,
      adapt_seconds=adapt_seconds, total_seconds=time.perf_counter() - start,
      update_choice=choice)


def encode_video(model: Model, frames_uint8_thwc: np.ndarray, fps: float,
                 method: str = 'full', steps: int | None = None, seed: int = 0,
                 effort: str = 'default', **config_kwargs) -> bytes:
  """Compresses the I-frames uint8[T, H, W, 3] (shown at `fps`) with `method`.

  Adapts as the `effort` preset says (`finetuning.EFFORTS`; the CLI's defaults), with
  `steps` and any other `AdaptationConfig` field given as a keyword on top
  (learning_rate, beta, prior, crop_size, ...); `beta` defaults to the one the model
  was trained with (its metadata), else 100. Decode with `iac_jax.decode`.
  """
  config_kwargs.setdefault('beta', default_beta(model))
  config = finetuning.config_for_effort(effort, method=method, steps=steps, **config_kwargs)
  return encode_video_detailed(model, frames_uint8_thwc, fps, config, seed).data


def encode_videos(model: Model, videos: list[np.ndarray], fps: list[float],
                  config: AdaptationConfig, seeds: list[int], mesh=None,
                  videos_per_device: int = 1, progress=None) -> list[VideoEncoding]:
  """`encode_video_detailed` for many videos, adapted together by `adapt_many`.

  Video i (uint8 frames[T, H, W, 3]) gets the bitstream it would get alone with
  seed `seeds[i]`, up to float reassociation in the batched adaptation.
  """
  from iac_jax.adaptation import batched  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  videos = [check_frames(v) for v in videos]
  results = batched.adapt_many(
      model.params, [padded_input(v) for v in videos],
      [jax.random.PRNGKey(s) for s in seeds], config, model.config,
      video_pixels=[int(np.prod(v.shape[:3])) for v in videos], mesh=mesh,
      videos_per_device=videos_per_device, progress=progress)
  share = (time.perf_counter() - start) / max(len(videos), 1)
  out = []
  for v, f, r, s in zip(videos, fps, results, seeds):
    out.append(encode_adapted(model, v, f, config, r, s, start=time.perf_counter() - share))
  return out
