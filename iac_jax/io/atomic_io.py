"""Files that are never half-written: write a temporary file, then rename it."""

from __future__ import annotations

import os
import tempfile


def write_bytes(path: str, data: bytes) -> None:
  """Atomically replaces `path` with `data` (same-directory temp file + rename)."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                             suffix='.tmp', dir=directory)
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
    os.replace(tmp, path)
  except BaseException:
    try:
      os.unlink(tmp)
    except FileNotFoundError:
      pass
    raise


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask
