"""The colab/ notebooks: stored clean, public API only, and they run top to bottom.

Each notebook is executed with nbclient in a kernel of this interpreter, with tiny
settings passed through the IAC_JAX_NB_* environment variables its parameters cell reads.
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import sys

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

COLAB = pathlib.Path(__file__).resolve().parent.parent / 'colab'
NOTEBOOKS = ('01_quickstart.ipynb', '02_rdm_objective.ipynb', '03_train_tiny_global_model.ipynb')

# A few steps on 2 frames cropped to 128x128: seconds of work, the rest is compilation.
TINY = {
    'IAC_JAX_NB_FRAMES': '2',
    'IAC_JAX_NB_FRAME_SIZE': '128',
    'IAC_JAX_NB_STEPS': '3',
    'IAC_JAX_NB_CROP': '64',
    'IAC_JAX_NB_BATCH': '2',
    # One prior besides the default (which is the main run, reused): one more compile.
    'IAC_JAX_NB_SWEEP_T': '0.005,0.01',
    'IAC_JAX_NB_SWEEP_ALPHA': '1000',
    'MPLBACKEND': 'Agg',
}
CELL_TIMEOUT_S = 300

def _private_names(source: str) -> list[str]:
  """Private modules or names imported from iac_jax, and `._x` attributes (dunders pass)."""
  private = lambda name: any(p.startswith('_') and not p.startswith('__')
                             for p in name.split('.'))
  found = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      found += [a.name for a in node.names if a.name.startswith('iac_jax') and private(a.name)]
    elif isinstance(node, ast.ImportFrom) and (node.module or '').startswith('iac_jax'):
      found += [f'{node.module}.{a.name}' for a in node.names
                if private(node.module) or private(a.name)]
    elif isinstance(node, ast.Attribute) and private(node.attr):
      found.append(node.attr)
  return found


def _read(name: str) -> nbformat.NotebookNode:
  nb = nbformat.read(COLAB / name, as_version=4)
  nbformat.validate(nb)
  return nb


def test_every_notebook_is_listed():
  assert sorted(p.name for p in COLAB.glob('*.ipynb')) == sorted(NOTEBOOKS)


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_notebook_is_stored_clean_and_uses_the_public_api(name):
  nb = _read(name)
  assert nb.nbformat == 4
  code = [c for c in nb.cells if c.cell_type == 'code']
  for cell in code:
    assert cell.outputs == [], f'{name}: stored outputs in a cell starting {cell.source[:60]!r}'
    assert cell.execution_count is None
    assert not _private_names(cell.source), f'{name}: {_private_names(cell.source)}'
  # The first code cell installs in Colab only; the parameters cell reads overrides.
  assert "'google.colab' in sys.modules" in code[0].source
  assert 'git+https://github.com/' in code[0].source
  assert 'os.environ.get(' in code[1].source


def _kernel_manager(tmp_path: pathlib.Path) -> AsyncKernelManager:
  """A kernel of this very interpreter, whatever `python3` kernelspecs are installed."""
  spec_dir = tmp_path / 'kernels' / 'iac-jax-test'
  spec_dir.mkdir(parents=True)
  (spec_dir / 'kernel.json').write_text(json.dumps({
      'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
      'display_name': 'iac-jax test', 'language': 'python'}))
  specs = KernelSpecManager(kernel_dirs=[str(tmp_path / 'kernels')])
  return AsyncKernelManager(kernel_name='iac-jax-test', kernel_spec_manager=specs)


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name, tmp_path, monkeypatch):
  for key, value in TINY.items():
    monkeypatch.setenv(key, value)  # the kernel inherits this process's environment
  # Notebook 03's workdir, the kernel's connection file and IPython profile: all under tmp_path.
  for key, folder in [('TMPDIR', 'tmp'), ('JUPYTER_RUNTIME_DIR', 'runtime'),
                      ('IPYTHONDIR', 'ipython')]:
    (tmp_path / folder).mkdir()
    monkeypatch.setenv(key, str(tmp_path / folder))
  work = tmp_path / 'work'
  work.mkdir()
  nb = _read(name)
  client = NotebookClient(nb, km=_kernel_manager(tmp_path), timeout=CELL_TIMEOUT_S,
                          startup_timeout=120, resources={'metadata': {'path': str(work)}})
  client.execute()  # raises CellExecutionError, with the traceback, if a cell fails
  errors = [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs
            if o.output_type == 'error']
  assert not errors
  assert os.listdir(work) == [], 'the notebook wrote into its working directory'
