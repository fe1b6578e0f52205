"""Huge pages for XLA's CPU buffers: whether a process has them, and a hint if not.

XLA's CPU runtime allocates the temporary buffers of each compiled call afresh
(hundreds of MB for a training step). glibc's malloc maps allocations that large with
`mmap` and unmaps them when they are freed, so the next call touches every page anew,
one page fault per 4 KiB page. glibc 2.35 and later advises such mappings for
transparent huge pages (2 MiB) when the environment holds
`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`; the campaign's CPU step then takes 0.75 s
instead of 1.17 s and an adaptation step 0.091 s instead of 0.122 s
(`benchmarks/README.md`, "Huge pages"). glibc reads the variable when the process
starts, so Python cannot set it for itself: the Makefile exports it, and long CPU runs
started without it print `first_cpu_hint()`.
"""

from __future__ import annotations

import os
import platform

TUNABLE = 'glibc.malloc.hugetlb'
SETTING = f'GLIBC_TUNABLES={TUNABLE}=1'
_THP_MODE = '/sys/kernel/mm/transparent_hugepage/enabled'
_ASKED: list[bool] = []  # first_cpu_hint has answered in this process


def _thp_mode(path: str = _THP_MODE) -> str | None:
  """The kernel's transparent-huge-page mode ('always', 'madvise', 'never'), or None."""
  try:
    with open(path, encoding='ascii') as f:
      text = f.read()
  except OSError:
    return None
  start, end = text.find('['), text.find(']')
  return text[start + 1:end] if 0 <= start < end else None


def _glibc_version() -> tuple[int, ...] | None:
  lib, version = platform.libc_ver()
  if lib != 'glibc' or not version:
    return None
  try:
    return tuple(int(v) for v in version.split('.')[:2])
  except ValueError:
    return None


def tunable_set(environ: dict[str, str] | None = None) -> bool:
  """Whether `GLIBC_TUNABLES` asks malloc for huge pages (hugetlb=1 or 2)."""
  value = (os.environ if environ is None else environ).get('GLIBC_TUNABLES', '')
  settings = dict(item.split('=', 1) for item in value.split(':') if '=' in item)
  return settings.get(TUNABLE, '0') in ('1', '2')


def hint(environ: dict[str, str] | None = None, thp_mode: str | None = None,
         glibc: tuple[int, ...] | None = None) -> str | None:
  """One line telling how to make CPU steps faster, or None when nothing would help:
  the tunable is set, the kernel gives huge pages to every mapping anyway ('always')
  or to none ('never'), or this is not glibc 2.35 or later. The arguments replace
  what this process would read (for tests)."""
  thp_mode = _thp_mode() if thp_mode is None else thp_mode
  glibc = _glibc_version() if glibc is None else glibc
  if thp_mode != 'madvise' or glibc is None or glibc < (2, 35) or tunable_set(environ):
    return None
  return (f'hint: CPU steps run about 1.3-1.5x faster with {SETTING} in the environment '
          '(glibc malloc on transparent huge pages; the Makefile sets it)')


def first_cpu_hint() -> str | None:
  """`hint()` for this process when JAX computes on the CPU, the first time it is asked
  (training and the CLI both ask; a campaign trains twice per run); None after that."""
  if _ASKED:
    return None
  _ASKED.append(True)
  import jax  # pylint: disable=g-import-not-at-top
  return hint() if jax.default_backend() == 'cpu' else None
