"""Trains CompressAI's MeanScaleHyperprior for benchmarks/train_parity.py (own venv).

Reads one JSON request on stdin:

  {"N", "M", "images": [training photo paths], "data_py": path of iac_jax/training/data.py,
   "steps", "batch", "crop", "seed", "lmbda", "lr", "aux_lr", "clip_max_norm",
   "log_every", "eval_every", "eval_npz": path of {name: uint8[H, W, 3]},
   "check_steps": [steps whose batch checksum to report], "torch_seed", "threads"}

and answers JSON lines on stdout: {"type": "check", ...} (checksums of the batches it
trains on, to compare with iac_jax's), {"type": "log", ...} every `log_every` steps
(means over the window: loss in iac_jax's units beta * bpp + MSE(255), CompressAI's own
loss, bpp, MSE, PSNR of each step averaged, aux loss), {"type": "eval", ...} per
held-out image at every `eval_every` steps and at the end, {"type": "done", ...}.

Training is examples/train.py's loop: RateDistortionLoss (lambda * 255^2 * MSE + bpp),
Adam on every parameter but the quantiles, the auxiliary quantile loss with its own
Adam, optional gradient clipping. The batches are iac_jax.training.data.CropStream's, from the
very same file (data.py needs only NumPy and PIL, so it is loaded without the package).
Evaluation: model.update(force=True), then compress()/decompress() on the image padded
(replicate) to a multiple of 64, cropped back; bpp = 8 * bytes of all strings / (H*W).
"""

import importlib.util
import json
import math
import sys
import time
import types
import zlib

# CompressAI's registry imports torchvision.transforms only to list them; no torchvision
# wheel here matches CPU torch 2.13, and the model code never uses it.
for _name in ('torchvision', 'torchvision.transforms'):
  sys.modules.setdefault(_name, types.ModuleType(_name))
sys.modules['torchvision'].transforms = sys.modules['torchvision.transforms']

import numpy as np
import torch
import torch.nn.functional as F
from compressai.losses import RateDistortionLoss
from compressai.models import MeanScaleHyperprior


def emit(record):
  print(json.dumps(record), flush=True)


def load_data_module(path):
  spec = importlib.util.spec_from_file_location('iac_data_standalone', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def batch_checksum(batch: np.ndarray) -> dict:
  return {'crc32': zlib.crc32(np.ascontiguousarray(batch).tobytes()),
          'sum': float(np.sum(batch, dtype=np.float64))}


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
  mse = np.mean(np.square(a.astype(np.float64) - b.astype(np.float64)))
  return float('inf') if mse == 0 else float(10 * np.log10(255.0**2 / mse))


@torch.no_grad()
def evaluate(model, image: np.ndarray) -> dict:
  """Real bitstream rate and PSNR of uint8[H, W, 3]; the model must be updated."""
  h, w, _ = image.shape
  x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
  ph, pw = -h % 64, -w % 64
  xp = F.pad(x, (0, pw, 0, ph), mode='replicate')
  t = time.perf_counter()
  out = model.compress(xp)
  dec = model.decompress(out['strings'], out['shape'])
  seconds = time.perf_counter() - t
  num_bytes = sum(len(s) for strings in out['strings'] for s in strings)
  x_hat = dec['x_hat'][0, :, :h, :w].permute(1, 2, 0).numpy()
  decoded = np.clip(np.round(x_hat * 255.0), 0, 255).astype(np.uint8)
  # The estimate of the same rounded latents (eval-mode forward, "dequantize").
  est = model(xp)
  est_bits = sum(float(-torch.log2(l).sum()) for l in est['likelihoods'].values())
  y_bytes = sum(len(s) for s in out['strings'][0])
  return {'width': w, 'height': h, 'bytes': num_bytes, 'y_bytes': y_bytes,
          'z_bytes': num_bytes - y_bytes, 'bpp_real': 8.0 * num_bytes / (h * w),
          'bpp_eval_estimate': est_bits / (h * w), 'psnr_db': psnr_db(image, decoded),
          'code_seconds': seconds}


def train(req):
  torch.set_num_threads(int(req.get('threads') or torch.get_num_threads()))
  data = load_data_module(req['data_py'])
  images = data.load_images(req['images'])
  stream = data.CropStream(images, req['batch'], req['crop'], req['seed'], prefetch=1)
  stream.close()  # only `batch(step)` is used, on this thread: no prefetching
  emit({'type': 'check', 'checksums': {str(k): batch_checksum(stream.batch(k))
                                       for k in req.get('check_steps', [])},
        'torch': torch.__version__, 'threads': torch.get_num_threads()})
  eval_images = {}
  if req.get('eval_npz'):
    with np.load(req['eval_npz']) as npz:
      eval_images = {k: npz[k] for k in npz.files}

  torch.manual_seed(req.get('torch_seed', 0))
  model = MeanScaleHyperprior(req['N'], req['M']).train()
  named = dict(model.named_parameters())
  net_params = [named[n] for n in sorted(named) if not n.endswith('.quantiles')]
  aux_params = [named[n] for n in sorted(named) if n.endswith('.quantiles')]
  optimizer = torch.optim.Adam(net_params, lr=req['lr'])
  aux_optimizer = torch.optim.Adam(aux_params, lr=req['aux_lr'])
  criterion = RateDistortionLoss(lmbda=req['lmbda'])
  beta = 1.0 / req['lmbda']
  clip = float(req.get('clip_max_norm') or 0.0)
  emit({'type': 'model', 'parameters': sum(p.numel() for p in net_params),
        'aux_parameters': sum(p.numel() for p in aux_params)})

  def run_eval(step):
    model.eval()
    model.update(force=True)
    for name, image in eval_images.items():
      emit({'type': 'eval', 'step': step, 'image': name, **evaluate(model, image)})
    model.train()

  window, t0, t_train = [], time.time(), 0.0
  for step in range(req['steps']):
    x = torch.from_numpy(stream.batch(step)).permute(0, 3, 1, 2).contiguous()
    t = time.perf_counter()
    optimizer.zero_grad()
    aux_optimizer.zero_grad()
    out = model(x)
    crit = criterion(out, x)
    crit['loss'].backward()
    if clip > 0:
      torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    aux_loss = model.aux_loss()
    aux_loss.backward()
    aux_optimizer.step()
    t_train += time.perf_counter() - t
    mse_255 = float(crit['mse_loss']) * 255.0**2
    bpp = float(crit['bpp_loss'])
    window.append({'loss': beta * bpp + mse_255, 'loss_compressai': float(crit['loss']),
                   'bpp': bpp, 'mse_255': mse_255,
                   'psnr_db': 10 * math.log10(255.0**2 / max(mse_255, 1e-10)),
                   'aux_loss': float(aux_loss)})
    done = step + 1
    if done % req['log_every'] == 0 or done == req['steps']:
      mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
      window = []
      emit({'type': 'log', 'step': done, **mean, 'wall_s': time.time() - t0,
            'train_s': t_train})
    if (req.get('eval_every') and done % req['eval_every'] == 0) or done == req['steps']:
      run_eval(done)
  emit({'type': 'done', 'wall_s': time.time() - t0, 'train_s': t_train})


def main():
  if '--check' in sys.argv:
    import compressai
    print('compressai', compressai.__version__, 'torch', torch.__version__,
          'threads', torch.get_num_threads())
    return
  for line in sys.stdin:
    if line.strip():
      train(json.loads(line))
      return


if __name__ == '__main__':
  main()
