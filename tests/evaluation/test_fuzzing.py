import numpy as np
import pytest

from iac_jax.adaptation import decoding
from iac_jax.adaptation.video_codec import encode_video
from iac_jax.codec import image_codec
from iac_jax.evaluation import fuzzing
from tests.conftest import smooth_image


@pytest.fixture(scope='module')
def streams(tiny_model):
  image = image_codec.encode_image(tiny_model, smooth_image(40, 70))
  clip = np.stack([smooth_image(64, 64, seed=s) for s in range(2)])
  video = encode_video(tiny_model, clip, 2.0, method='full', steps=2, crop_size=0,
                       learning_rate=1e-3)
  return {'image': image, 'video': video}


@pytest.mark.parametrize('kind', ['image', 'video'])
def test_short_fuzz_ends_every_case_in_bitstream_error_or_a_valid_decode(
    streams, tiny_model, kind):
  counts = fuzzing.run(streams[kind], tiny_model, cases=1500, seed=7, time_bound_s=10.0)
  assert sum(counts.values()) == 1500
  refused = sum(n for (_, outcome), n in counts.items() if outcome == 'BitstreamError')
  assert refused > 1000
  # Every kind of mutation was tried, and the corruptions the checksums see were refused.
  kinds = {k for k, _ in counts}
  assert {'random', 'bitflip', 'truncate', 'extend-length', 'huge-size',
          'model-fingerprint', 'model-name', 'payload'} <= kinds
  for k in ('bitflip', 'extend-length', 'model-fingerprint', 'model-name', 'random'):
    assert counts[(k, 'decoded')] == 0


def test_a_header_declaring_more_latents_than_its_bytes_can_hold_is_refused():
  from iac_jax import init_model
  from iac_jax.codec import bitstream
  model = init_model('small', seed=0)  # M=96: a 2048x16384 frame has 12.6 M latents
  header = image_codec.stream_header(model, bitstream.KIND_IMAGE, 1, 2048, 16384)
  empty = [bitstream.Section(image_codec.TAG_Z, b''), bitstream.Section(image_codec.TAG_Y, b'')]
  with pytest.raises(bitstream.BitstreamError, match='cannot hold'):
    decoding.decode(bitstream.pack(header, empty), model)
