"""Times CompressAI training steps for benchmarks/train_step.py (runs in its own venv).

Reads one JSON request per line on stdin, {"N", "M", "batch", "crop", "steps"}, runs
that many training steps of CompressAI's MeanScaleHyperprior (forward, rate-distortion
loss, backward, Adam step; the auxiliary quantile loss is left out, as iac_jax has
none) and answers {"times": [seconds per step]} on stdout.
"""

import json
import sys
import time
import types

# CompressAI's registry imports torchvision.transforms only to list them; no torchvision
# wheel here matches CPU torch 2.13, and the model code never uses it.
for _name in ('torchvision', 'torchvision.transforms'):
  sys.modules.setdefault(_name, types.ModuleType(_name))
sys.modules['torchvision'].transforms = sys.modules['torchvision.transforms']

import torch
from compressai.models import MeanScaleHyperprior


def make_step(n, m, batch, crop):
  torch.manual_seed(0)
  model = MeanScaleHyperprior(n, m).train()
  params = [p for name, p in model.named_parameters() if not name.endswith('quantiles')]
  optimizer = torch.optim.Adam(params, lr=1e-4)
  x = torch.rand(batch, 3, crop, crop)
  pixels = batch * crop * crop

  def step():
    optimizer.zero_grad(set_to_none=True)
    out = model(x)
    bpp = sum(torch.log(l).sum() for l in out['likelihoods'].values()) / (-0.6931471805599453 * pixels)
    loss = 100.0 * bpp + 255.0**2 * torch.mean((out['x_hat'] - x) ** 2)
    loss.backward()
    optimizer.step()
  return step


def main():
  if '--check' in sys.argv:
    import compressai
    print('compressai', compressai.__version__, 'torch', torch.__version__,
          'threads', torch.get_num_threads())
    return
  steps = {}
  for line in sys.stdin:
    req = json.loads(line)
    key = (req['N'], req['M'], req['batch'], req['crop'])
    if key not in steps:
      steps[key] = make_step(*key)
      steps[key]()  # warm-up
    times = []
    for _ in range(req['steps']):
      t = time.perf_counter()
      steps[key]()
      times.append(time.perf_counter() - t)
    print(json.dumps({'times': times}), flush=True)


if __name__ == '__main__':
  main()
