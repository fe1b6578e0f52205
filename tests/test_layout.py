"""The package's folders are layers: each imports only the folders below it.

README.md's "Layout" lists them from the bottom up; an import that points the other way
(even one inside a function) is the first step to a cycle, so it fails here.
"""

import ast
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / 'iac_jax'
# Bottom up. 'top' is the package's own modules: cli, demo, stream_info, __init__.
LAYERS = {'io': 0, 'codec': 1, 'optim': 1, 'adaptation': 2, 'evaluation': 3, 'training': 4,
          'top': 5}


def _folder(module: str) -> str:
  parts = module.split('.')
  return parts[1] if len(parts) > 2 or (PACKAGE / parts[-1]).is_dir() else 'top'


def _imports(path: pathlib.Path) -> list[str]:
  found = []
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('iac_jax'):
      found += [f'{node.module}.{a.name}' if node.module == 'iac_jax' else node.module
                for a in node.names]
    elif isinstance(node, ast.Import):
      found += [a.name for a in node.names if a.name.startswith('iac_jax')]
  return found


def test_every_import_points_down_the_layers():
  upward = []
  for path in PACKAGE.rglob('*.py'):
    module = '.'.join(('iac_jax', *path.relative_to(PACKAGE).with_suffix('').parts))
    here = _folder(module)
    assert here in LAYERS, f'{module}: folder {here!r} is not in LAYERS (or README)'
    for target in _imports(path):
      there = _folder(target)
      if there != here and LAYERS[there] >= LAYERS[here]:
        upward.append(f'{module} imports {target}')
  assert not upward, upward


def test_importing_the_package_loads_no_tensorflow():
  code = ('import sys, iac_jax; '
          'print(sorted(m for m in sys.modules if m.startswith("tensorflow")))')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                       check=True, cwd=PACKAGE.parent).stdout
  assert out.strip() == '[]'
