#!/usr/bin/env bash
# Makes benchmarks/.compressai-venv: CPU PyTorch 2.13 and CompressAI, for
# benchmarks/train_step.py. CompressAI is never a dependency of iac-jax; this
# environment exists only for the side-by-side timing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.compressai-venv"
python="${PYTHON:-python3.11}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/pip" install -q)
# Every later install is held to the CPU build of torch 2.13 and NumPy 1.
constraints="$venv/constraints.txt"
printf 'torch==2.13.0+cpu\nnumpy<2\n' > "$constraints"
"${pip[@]}" -c "$constraints" 'torch==2.13.0+cpu' \
  || "${pip[@]}" torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
# CompressAI without its own dependency list, then what `import compressai` imports.
# Not torchvision: no wheel here matches the CPU build of torch 2.13 (PyPI's 0.28.0
# is built for the CUDA torch and fails to load); CompressAI imports it only to list
# transforms in its registry, so compressai_worker.py stands in an empty module.
"${pip[@]}" --no-deps compressai==1.2.8
"${pip[@]}" -c "$constraints" numpy scipy einops tqdm requests pandas pillow \
  pytorch-msssim torch_geometric
"$venv/bin/python" "$here/compressai_worker.py" --check
