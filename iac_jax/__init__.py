"""iac-jax: instance-adaptive neural compression in JAX/Flax.

Public API:
  load_model(name_or_path) -> Model
  encode_image(model, image_uint8_hwc) -> bytes
  encode_video(model, frames_uint8_thwc, fps, method='full', steps=...) -> bytes
  AdaptationConfig, ModelPrior: the adaptation settings and the update's prior
  adapt_many(params, videos, rngs, config, model_config, ...) -> [AdaptationResult]
  decode(data, model=None) -> uint8[T, H, W, 3]; a stream declaring more output than
    codec.bitstream.MAX_OUTPUT_PIXELS is refused unless max_output_pixels= allows it
  import_compressai(checkpoint, output) -> Model: a CompressAI mbt2018-mean checkpoint
    as MODEL.msgpack + MODEL.json; load_compressai(checkpoint) -> Model, in memory
  BitstreamError: raised for every malformed bitstream.

The rest lives in subpackages, each importing only those before it: io, codec, optim,
adaptation, evaluation, training (README.md, "Layout").
"""

from iac_jax.adaptation.batched import adapt_many
from iac_jax.adaptation.decoding import decode
from iac_jax.adaptation.finetuning import AdaptationConfig
from iac_jax.adaptation.model_prior import ModelPrior
from iac_jax.adaptation.video_codec import encode_video
from iac_jax.codec.bitstream import BitstreamError
from iac_jax.codec.compressai_import import import_checkpoint as import_compressai
from iac_jax.codec.compressai_import import load_compressai
from iac_jax.codec.configs import CONFIGS, ModelConfig, get_config
from iac_jax.codec.image_codec import encode_image
from iac_jax.codec.models import Model, init_model, load_model, save_model, shipped_models

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
