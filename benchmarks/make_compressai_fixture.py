"""Writes a CompressAI MeanScaleHyperprior reference for iac_jax.codec.compressai_import.

Runs in the CompressAI venv (`bash benchmarks/make_compressai_env.sh`), never in ours:

  benchmarks/.compressai-venv/bin/python benchmarks/make_compressai_fixture.py \
      --output=tests/fixtures/compressai_tiny.npz \
      --pth=tests/fixtures/compressai_tiny.pth.tar \
      --legacy_pth=tests/fixtures/compressai_tiny_legacy.pth.tar

trains a small MeanScaleHyperprior(N, M) briefly on synthetic crops (so that the weights,
GDN parameters and the entropy bottleneck's quantiles are non-trivial), runs
`update(force=True)`, and writes one `.npz`:

  state_dict/<key>   every tensor of model.state_dict() but the `_quantized_cdf` tables
  image              uint8[H, W, 3], the input (x = image / 255, NCHW on this side)
  y, z, x_hat        the eval-mode forward pass, NCHW float32
  y_likelihoods, z_likelihoods, scales_hat, means_hat
  y_bytes, z_bytes   byte counts of compress()'s strings
  decoded            uint8[H, W, 3]: round(255 * decompress()['x_hat'])

`--pth` writes `torch.save(model.state_dict())` taken before `update()` (as a
training script's checkpoint is: the CDF buffers still empty, so the file stays small),
`--legacy_pth` the same nested under 'state_dict' in torch's pre-1.6 (non-zip) format,
as older CompressAI checkpoints are stored.
"""

import argparse
import os
import sys
import types

# CompressAI's registry imports torchvision.transforms only to list them; no torchvision
# wheel here matches CPU torch 2.13, and the model code never uses it.
for _name in ('torchvision', 'torchvision.transforms'):
  sys.modules.setdefault(_name, types.ModuleType(_name))
sys.modules['torchvision'].transforms = sys.modules['torchvision.transforms']

import numpy as np
import torch
import torch.nn.functional as F
from compressai.models import MeanScaleHyperprior


def synthetic_images(rng: np.random.Generator, count: int, height: int, width: int):
  """Smooth random images with a few sharp edges, float32 [count, 3, H, W] in [0, 1]."""
  coarse = torch.from_numpy(rng.uniform(0, 1, (count, 3, height // 16 + 1, width // 16 + 1)))
  x = F.interpolate(coarse.float(), size=(height, width), mode='bicubic', align_corners=True)
  yy, xx = np.mgrid[0:height, 0:width]
  for i in range(count):
    for _ in range(3):  # half-planes of constant colour shift
      a, b, c = rng.normal(size=3)
      mask = torch.from_numpy((a * (yy - height / 2) + b * (xx - width / 2) + c * 8) > 0)
      x[i] += mask.float() * torch.from_numpy(rng.uniform(-0.3, 0.3, (3, 1, 1))).float()
  return x.clamp(0, 1)


def photo_crops(rng, images, count, size):
  out = []
  for _ in range(count):
    img = images[rng.integers(len(images))]
    h, w, _ = img.shape
    top, left = rng.integers(h - size + 1), rng.integers(w - size + 1)
    out.append(img[top:top + size, left:left + size])
  return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0


def load_photos(folder, max_side=768):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  photos = []
  for name in sorted(os.listdir(folder))[:16]:
    with Image.open(os.path.join(folder, name)) as im:
      im = im.convert('RGB')
      im.thumbnail((max_side, max_side))
      photos.append(np.asarray(im))
  return [p for p in photos if min(p.shape[:2]) >= 256]


def train(model, args, rng):
  named = dict(model.named_parameters())
  net = [named[n] for n in sorted(named) if not n.endswith('.quantiles')]
  aux = [named[n] for n in sorted(named) if n.endswith('.quantiles')]
  optimizer = torch.optim.Adam(net, lr=args.lr)
  aux_optimizer = torch.optim.Adam(aux, lr=1e-2)
  photos = load_photos(args.train_images) if args.train_images else None
  model.train()
  for step in range(args.steps):
    if photos:
      x = photo_crops(rng, photos, args.batch, args.crop)
    else:
      x = synthetic_images(rng, args.batch, args.crop, args.crop)
    optimizer.zero_grad()
    aux_optimizer.zero_grad()
    out = model(x)
    bpp = sum(-torch.log2(lik).sum() for lik in out['likelihoods'].values()) / x[:, 0].numel()
    loss = args.lmbda * 255.0**2 * F.mse_loss(out['x_hat'], x) + bpp
    loss.backward()
    optimizer.step()
    aux_loss = model.aux_loss()
    aux_loss.backward()
    aux_optimizer.step()
    if step % 100 == 0 or step == args.steps - 1:
      print(f'step {step} loss {loss.item():.3f} bpp {bpp.item():.3f} '
            f'aux {aux_loss.item():.1f}', file=sys.stderr, flush=True)
  model.eval()


def eval_image(args, rng):
  if args.image:
    from PIL import Image  # pylint: disable=g-import-not-at-top
    with Image.open(args.image) as im:
      image = np.asarray(im.convert('RGB'))
    h, w = image.shape[0] // 64 * 64, image.shape[1] // 64 * 64
    return np.ascontiguousarray(image[:min(h, args.height), :min(w, args.width)])
  x = synthetic_images(rng, 1, args.height, args.width)[0]
  return np.round(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


@torch.no_grad()
def reference_outputs(model, image):
  x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
  y = model.g_a(x)
  z = model.h_a(y)
  out = model(x)
  z_hat, _ = model.entropy_bottleneck(z, training=False)
  scales_hat, means_hat = model.h_s(z_hat).chunk(2, 1)
  comp = model.compress(x)
  dec = model.decompress(comp['strings'], comp['shape'])
  decoded = np.round(dec['x_hat'][0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
  return {
      'image': image, 'y': y.numpy(), 'z': z.numpy(), 'x_hat': out['x_hat'].numpy(),
      'y_likelihoods': out['likelihoods']['y'].numpy(),
      'z_likelihoods': out['likelihoods']['z'].numpy(),
      'scales_hat': scales_hat.numpy(), 'means_hat': means_hat.numpy(),
      'y_bytes': np.int64(sum(len(s) for s in comp['strings'][0])),
      'z_bytes': np.int64(sum(len(s) for s in comp['strings'][1])),
      'decoded': decoded,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--N', type=int, default=8)
  parser.add_argument('--M', type=int, default=12)
  parser.add_argument('--steps', type=int, default=400)
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--crop', type=int, default=64)
  parser.add_argument('--lr', type=float, default=1e-3)
  parser.add_argument('--lmbda', type=float, default=0.0483)
  parser.add_argument('--height', type=int, default=128)
  parser.add_argument('--width', type=int, default=128)
  parser.add_argument('--image', default=None, help='eval image (cropped to multiples of 64)')
  parser.add_argument('--train_images', default=None, help='folder of training photos')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--threads', type=int, default=1)
  parser.add_argument('--output', required=True, help='the .npz to write')
  parser.add_argument('--pth', default=None)
  parser.add_argument('--legacy_pth', default=None)
  args = parser.parse_args()
  torch.set_num_threads(args.threads)
  torch.manual_seed(args.seed)
  rng = np.random.default_rng(args.seed)
  model = MeanScaleHyperprior(args.N, args.M)
  train(model, args, rng)
  if args.pth:
    torch.save(model.state_dict(), args.pth)
  if args.legacy_pth:
    torch.save({'epoch': args.steps, 'state_dict': model.state_dict(), 'loss': 1.5},
               args.legacy_pth, _use_new_zipfile_serialization=False)
  model.update(force=True)
  ref = reference_outputs(model, eval_image(args, rng))
  # The CDF tables (gaussian_conditional's alone is 64 x ~3000 int32) are left out:
  # they are derived data, which the importer ignores and iac_jax rebuilds itself.
  arrays = {f'state_dict/{k}': v.numpy() for k, v in model.state_dict().items()
            if not k.endswith('_quantized_cdf')}
  arrays.update(ref)
  np.savez_compressed(args.output, **arrays)
  print(f'wrote {args.output} ({os.path.getsize(args.output)} bytes): y {ref["y_bytes"]} '
        f'bytes, z {ref["z_bytes"]} bytes', file=sys.stderr)


if __name__ == '__main__':
  main()
