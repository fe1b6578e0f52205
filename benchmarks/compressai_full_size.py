"""Full-size check of iac_jax.codec.compressai_import: N=128, M=192 (CompressAI's qualities 1-4).

  .venv/bin/python benchmarks/compressai_full_size.py [--steps=300] [--json=OUT.json]

Trains CompressAI's MeanScaleHyperprior(128, 192) briefly from its random initialization
in the CompressAI venv (benchmarks/make_compressai_fixture.py; on ../shared/data/
train_images when present, else synthetic crops), writes its state_dict both as .npz and
with torch.save, imports both here (without torch), and compares our forward pass, rates,
bitstream and decoded PSNR with CompressAI's on the sample photo
(iac_jax/samples/rocket.png, cropped to multiples of 64). Results: COMPRESSAI_IMPORT.md.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import jax
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from iac_jax.codec import compressai_import
from iac_jax.evaluation import compressai_parity
from iac_jax.io import torch_checkpoint


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--steps', type=int, default=300)
  parser.add_argument('--N', type=int, default=128)
  parser.add_argument('--M', type=int, default=192)
  parser.add_argument('--height', type=int, default=384)
  parser.add_argument('--width', type=int, default=640)
  parser.add_argument('--threads', type=int, default=1)
  parser.add_argument('--json', default=None, help='also write the numbers here')
  args = parser.parse_args()
  python = os.path.join(HERE, '.compressai-venv', 'bin', 'python')
  if not os.path.exists(python):
    sys.exit('no CompressAI venv: run `bash benchmarks/make_compressai_env.sh` first')
  photos = os.path.join(ROOT, '..', 'shared', 'data', 'train_images')
  with tempfile.TemporaryDirectory() as tmp:
    npz, pth = os.path.join(tmp, 'ref.npz'), os.path.join(tmp, 'ref.pth.tar')
    cmd = [python, os.path.join(HERE, 'make_compressai_fixture.py'), f'--N={args.N}',
           f'--M={args.M}', f'--steps={args.steps}', '--batch=4', '--crop=128',
           '--lr=5e-4', '--lmbda=0.0067', f'--height={args.height}', f'--width={args.width}',
           f'--image={os.path.join(ROOT, "iac_jax", "samples", "rocket.png")}',
           f'--threads={args.threads}', f'--output={npz}', f'--pth={pth}']
    if os.path.isdir(photos):
      cmd.append(f'--train_images={photos}')
    subprocess.run(cmd, check=True)
    reference = torch_checkpoint.read_checkpoint(npz)
    model = compressai_import.load_compressai(npz)
    _, from_pth = compressai_import.convert_state_dict(torch_checkpoint.read_checkpoint(pth))
    same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(model.params),
                                                    jax.tree.leaves(from_pth)))
    result = dict(compressai_parity.compare(model, reference), config=model.config.name,
                  steps=args.steps, pth_reads_like_npz=same,
                  pth_bytes=os.path.getsize(pth))
  print(json.dumps(result, indent=2))
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(result, f, indent=2)


if __name__ == '__main__':
  main()
