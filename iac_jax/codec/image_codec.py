"""Image coding with real range-coded bitstreams: an image to bytes, a frame's 'Z' and
'Y' sections to pixels and back.

The quantities that select a CDF table (z_hat -> mu, sigma -> table indexes) are
computed by encoder and decoder alike on the host, in float64 NumPy
(`entropy_parameters`), so that the last bits of a float cannot pick another table
on another device or thread count; the synthesis (y_hat -> x_hat) is one jitted
function both run on the same integers, so the decoder's frames equal the encoder's
reconstruction exactly.

Frames of any size are padded (edge replication) to a multiple of 64 and cropped
back after decoding. Whole streams are decoded by `iac_jax.adaptation.decoding.decode`
(`iac_jax.decode`), because a video stream's update section must be applied first;
this module gives it `model_for` and `decode_frame`, and never imports the method.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from iac_jax.codec import bitstream, entropy_parameters, range_coding
from iac_jax.codec.bitstream import BitstreamError
from iac_jax.codec.configs import PAD_MULTIPLE, ModelConfig
from iac_jax.codec.entropy_models import CdfTables, factorized_tables, gaussian
from iac_jax.codec.hyperprior import MeanScaleHyperprior
from iac_jax.codec.models import Model, load_model, params_fingerprint, shipped_models

log = logging.getLogger(__name__)

TAG_Z = b'Z'
TAG_Y = b'Y'
TAG_UPDATE = b'U'


# --- jitted stages, shared by encoder and decoder -------------------------------

@functools.partial(jax.jit, static_argnums=0)
def _analysis(config: ModelConfig, params, x):
  return MeanScaleHyperprior(config).apply({'params': params}, x, method='analysis')


@functools.partial(jax.jit, static_argnums=0)
def _synthesis(config: ModelConfig, params, y_hat):
  return MeanScaleHyperprior(config).apply({'params': params}, y_hat, method='synthesis')


@functools.cache
def _gaussian_tables() -> CdfTables:
  return gaussian.gaussian_tables()


_Z_TABLES: dict[bytes, CdfTables] = {}


def _z_tables(model: Model) -> CdfTables:
  """The z tables of a model's (possibly adapted) factorized prior, cached."""
  key = params_fingerprint(model.params['z_prior'])
  if key not in _Z_TABLES:
    if len(_Z_TABLES) > 64:
      _Z_TABLES.clear()
    _Z_TABLES[key] = factorized_tables(model.params['z_prior'])
  return _Z_TABLES[key]


# --- pixels ---------------------------------------------------------------------

def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
  """Checks an image and converts grayscale or RGBA to uint8[H, W, 3] RGB."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise TypeError(f'expected a uint8 image, got dtype {image.dtype}')
  if image.ndim == 2:
    image = image[:, :, None]
  if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
    raise ValueError(f'expected an image [H, W, C], got shape {image.shape}')
  channels = image.shape[2]
  if channels == 1:
    log.warning('grayscale input: coding it as RGB with equal channels')
    image = np.repeat(image, 3, axis=2)
  elif channels == 4:
    log.warning('RGBA input: the alpha channel is dropped')
    image = image[:, :, :3]
  elif channels != 3:
    raise ValueError(f'expected 1, 3 or 4 channels, got {channels}')
  return np.ascontiguousarray(image)


def pad_to_multiple(image: np.ndarray, multiple: int = PAD_MULTIPLE) -> np.ndarray:
  """Pads uint8[H, W, 3] by edge replication so that H and W divide by `multiple`."""
  h, w, _ = image.shape
  return np.pad(image, ((0, -h % multiple), (0, -w % multiple), (0, 0)), mode='edge')


def to_uint8(x_hat: np.ndarray, height: int, width: int) -> np.ndarray:
  """float [1, Hp, Wp, 3] reconstruction -> cropped uint8[H, W, 3]."""
  x = np.asarray(x_hat, np.float32)[0, :height, :width]
  return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


# --- one frame ------------------------------------------------------------------

def _z_indexes(shape: Sequence[int]) -> np.ndarray:
  return np.broadcast_to(np.arange(shape[-1], dtype=np.int32), shape)


def _entropy_parameters(model: Model, z_int: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mu float32, sigma float64) of y from the integer z, on the shared host path
  (`entropy_parameters`): encoder and decoder get the same tables on any device."""
  z_hat = entropy_parameters.dequantize_z(z_int, model.params['z_prior']['medians'])
  mu, sigma = entropy_parameters.hyper_synthesis(model.params['h_s'], z_hat)
  return mu.astype(np.float32), sigma


# Latents at or beyond this magnitude (or not finite) come only from a model whose
# parameters diverged; the range coder could not send them (it stops at 2^30).
_MAX_LATENT = 2.0**29


class DivergedError(ValueError):
  """A model, or its adaptation, diverged: its parameters, update or latents are not
  finite or too large to code. Nothing is written; a smaller learning rate helps."""


def _check_codable(values: np.ndarray, name: str) -> None:
  if not np.all(np.abs(values) < _MAX_LATENT):  # NaN fails the comparison too
    raise DivergedError(f'cannot code the frame: its {name} latents are not finite or '
                        'too large (>= 2^29); the model diverged (if it was adapted, use '
                        'a smaller learning rate)')


@dataclasses.dataclass(frozen=True)
class FrameSymbols:
  """What the range coder sends for one frame, and what the decoder will output.

  Attributes:
    z_int: int64[1, h/64, w/64, M'] hyper-latents, rounded around the z medians.
    y_int: int64[1, h/16, w/16, M] latents, rounded around their predicted means.
    y_indexes: int32, the scale-table index of each latent of y (host float64 path).
    reconstruction: uint8[H, W, 3], the synthesis of the dequantized y.
  """

  z_int: np.ndarray
  y_int: np.ndarray
  y_indexes: np.ndarray
  reconstruction: np.ndarray


def frame_symbols(model: Model, image: np.ndarray,
                  latents: tuple[np.ndarray, np.ndarray] | None = None) -> FrameSymbols:
  """The integers one uint8[H, W, 3] frame is coded as, with no range coder involved
  (runs where TensorFlow does not). `latents` (y, z) replace the analysis output
  (latent optimization)."""
  height, width, _ = image.shape
  if latents is None:
    x = jnp.asarray(pad_to_multiple(image)[None], jnp.float32) / 255.0
    y, z = _analysis(model.config, model.params, x)
  else:
    y, z = latents
  z = np.asarray(z)
  _check_codable(z, 'z')
  z_int = np.round(z - np.asarray(model.params['z_prior']['medians'], np.float32)
                   ).astype(np.int64)
  mu, sigma = _entropy_parameters(model, z_int)
  y_residual = np.asarray(y) - mu
  _check_codable(y_residual, 'y')
  y_int = np.round(y_residual).astype(np.int64)
  x_hat = _synthesis(model.config, model.params, y_int.astype(np.float32) + mu)
  return FrameSymbols(z_int, y_int, entropy_parameters.scale_indexes(sigma),
                      to_uint8(x_hat, height, width))


def code_symbols(model: Model, symbols: FrameSymbols) -> list[bitstream.Section]:
  """Range-codes a frame's z and y integers into its two sections."""
  z_bytes = range_coding.encode(symbols.z_int, _z_indexes(symbols.z_int.shape),
                                _z_tables(model))
  y_bytes = range_coding.encode(symbols.y_int, symbols.y_indexes, _gaussian_tables())
  return [bitstream.Section(TAG_Z, z_bytes), bitstream.Section(TAG_Y, y_bytes)]


def encode_frame(model: Model, image: np.ndarray,
                 latents: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[list[bitstream.Section], np.ndarray]:
  """Codes one uint8[H, W, 3] frame; returns its (z, y) sections and the decoder's
  reconstruction uint8[H, W, 3]. `latents` (y, z) replace the analysis output
  (latent optimization)."""
  symbols = frame_symbols(model, image, latents)
  return code_symbols(model, symbols), symbols.reconstruction


def _decode_ints(payload: bytes, indexes: np.ndarray, tables: CdfTables,
                 what: str) -> np.ndarray:
  try:
    return range_coding.decode(payload, indexes, tables)
  except range_coding.RangeCodingError as e:
    raise BitstreamError(f'{what}: {e}') from None


# Every coding table has at least two symbols with one count each out of at most
# 2^16, so a symbol costs at least -log2(1 - 2^-16) bits and one byte carries at most
# this many symbols (8 more bytes allowed for the coder's state).
MAX_SYMBOLS_PER_BYTE = int(np.ceil(8 / -np.log2(1 - 2.0**-16)))


def _check_symbol_count(count: int, payload: bytes, what: str):
  if count > (len(payload) + 8) * MAX_SYMBOLS_PER_BYTE:
    raise BitstreamError(f'{what} section of {len(payload)} bytes cannot hold '
                         f'{count} symbols')


def decode_frame(model: Model, z_section: bitstream.Section, y_section: bitstream.Section,
                 height: int, width: int) -> np.ndarray:
  """Inverse of `encode_frame`: uint8[H, W, 3]."""
  if z_section.tag != TAG_Z or y_section.tag != TAG_Y:
    raise BitstreamError('expected a z section followed by a y section')
  ph, pw = -(-height // PAD_MULTIPLE) * PAD_MULTIPLE, -(-width // PAD_MULTIPLE) * PAD_MULTIPLE
  z_shape = (1, ph // 64, pw // 64, model.config.num_hyper_latents)
  # Sizes come from the header: refuse them before allocating if the bytes present
  # cannot possibly code that many latents.
  _check_symbol_count(int(np.prod(z_shape)), z_section.payload, 'z')
  _check_symbol_count((ph // 16) * (pw // 16) * model.config.num_latents,
                      y_section.payload, 'y')
  z_int = _decode_ints(z_section.payload, _z_indexes(z_shape), _z_tables(model), 'z')
  mu, sigma = _entropy_parameters(model, z_int)
  y_int = _decode_ints(y_section.payload, entropy_parameters.scale_indexes(sigma),
                       _gaussian_tables(), 'y')
  x_hat = _synthesis(model.config, model.params, y_int.astype(np.float32) + mu)
  return to_uint8(x_hat, height, width)


# --- public API -----------------------------------------------------------------

def stream_header(model: Model, kind: int, frames: int, height: int, width: int,
                  fps: tuple[int, int] = (0, 1)) -> bitstream.Header:
  return bitstream.Header(
      kind=kind, model_name=model.name, model_fingerprint=model.fingerprint,
      config_name=model.config.name, num_filters=model.config.num_filters,
      num_latents=model.config.num_latents, frames=frames, height=height, width=width,
      fps_num=fps[0], fps_den=fps[1])


def encode_image(model: Model, image: np.ndarray) -> bytes:
  """Compresses uint8[H, W, C] (C = 1, 3 or 4) into an iac-jax bitstream."""
  image = as_rgb_uint8(image)
  sections, _ = encode_frame(model, image)
  h, w, _ = image.shape
  return bitstream.pack(stream_header(model, bitstream.KIND_IMAGE, 1, h, w), sections)


def model_for(header: bitstream.Header, model: Model | None) -> Model:
  """The model a stream needs: the given one (checked) or the shipped one it names."""
  if model is None:
    if header.model_name not in shipped_models():
      raise BitstreamError(f'the bitstream needs model {header.model_name!r}, which is '
                           f'not installed (shipped: {shipped_models()})')
    model = load_model(header.model_name)
  if (model.config.name != header.config_name
      or model.config.num_filters != header.num_filters
      or model.config.num_latents != header.num_latents):
    raise BitstreamError(f'the bitstream is for config {header.config_name!r} '
                         f'(N={header.num_filters}, M={header.num_latents}), not '
                         f'{model.config.name!r}')
  if model.fingerprint != header.model_fingerprint:
    raise BitstreamError(f'the bitstream was made with different weights than model '
                         f'{model.name!r} (fingerprint mismatch)')
  return model
