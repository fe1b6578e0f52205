"""iac-jax: instance-adaptive neural compression in JAX/Flax.

Public API:
  load_model(name_or_path) -> Model
  encode_image(model, image_uint8_hwc) -> bytes
  encode_video(model, frames_uint8_thwc, fps, method='full', steps=...) -> bytes
  AdaptationConfig, ModelPrior: the adaptation settings and the update's prior
  adapt_many(params, videos, rngs, config, model_config, ...) -> [AdaptationResult]
  decode(data, model=None) -> uint8[T, H, W, 3]; a stream declaring more output than
    bitstream.MAX_OUTPUT_PIXELS is refused unless max_output_pixels= allows it
  import_compressai(checkpoint, output) -> Model: a CompressAI mbt2018-mean checkpoint
    as MODEL.msgpack + MODEL.json; load_compressai(checkpoint) -> Model, in memory
  BitstreamError: raised for every malformed bitstream.
"""

from iac_jax.adaptation import AdaptationConfig
from iac_jax.batch_adaptation import adapt_many
from iac_jax.bitstream import BitstreamError
from iac_jax.codec import decode, encode_image
from iac_jax.compressai_import import import_checkpoint as import_compressai
from iac_jax.compressai_import import load_compressai
from iac_jax.configs import CONFIGS, ModelConfig, get_config
from iac_jax.model_prior import ModelPrior
from iac_jax.models import Model, init_model, load_model, save_model, shipped_models
from iac_jax.video_codec import encode_video

__all__ = [
    'CONFIGS',
    'AdaptationConfig',
    'BitstreamError',
    'Model',
    'ModelConfig',
    'ModelPrior',
    'adapt_many',
    'decode',
    'encode_image',
    'encode_video',
    'get_config',
    'import_compressai',
    'init_model',
    'load_compressai',
    'load_model',
    'save_model',
    'shipped_models',
]
__version__ = '0.1.0'
