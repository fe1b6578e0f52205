"""Integer CDF tables for the range coder, built deterministically in NumPy.

A table codes the integers `offset, offset + 1, ..., offset + len(pmf) - 1`; one
more symbol, carrying the tail mass, is the escape code for values outside that
range (tensorflow-compression's overflow coding, enabled by a negative precision).
The coder's lookup is the concatenation over tables of `[-precision] + cdf`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class CdfTables:
  """Concatenated coding tables.

  Attributes:
    lookup: int32[sum(len(cdf) + 1)], each table as `[-precision, cdf...]`.
    offsets: int32[num_tables], the integer that symbol 0 of each table stands for.
    sizes: int32[num_tables], symbols per table excluding the escape symbol.
  """

  lookup: np.ndarray
  offsets: np.ndarray
  sizes: np.ndarray

  @property
  def num_tables(self) -> int:
    return int(self.offsets.size)


def pmf_to_quantized_cdf(pmf: np.ndarray, precision: int) -> np.ndarray:
  """Quantized CDF of `pmf` with every symbol given at least one count.

  Returns int32[len(pmf) + 1] from 0 to 2**precision. Deterministic: counts are
  rounded, then the surplus or deficit is settled on the largest counts.
  """
  pmf = np.asarray(pmf, np.float64)
  if pmf.ndim != 1 or pmf.size < 1 or not np.all(np.isfinite(pmf)):
    raise ValueError('pmf must be a finite, non-empty vector')
  total = 1 << precision
  if pmf.size > total:
    raise ValueError(f'{pmf.size} symbols do not fit {precision}-bit precision')
  pmf = np.maximum(pmf, 0.0)
  mass = pmf.sum()
  pmf = pmf / mass if mass > 0 else np.full_like(pmf, 1.0 / pmf.size)
  counts = np.maximum(np.round(pmf * total).astype(np.int64), 1)
  excess = int(counts.sum()) - total
  # Take the excess from (or give the deficit to) the most probable symbols, where a
  # count changes the code length least. Stable sorting keeps this deterministic.
  order = np.argsort(-counts, kind='stable')
  i = 0
  while excess != 0:
    j = order[i % order.size]
    if excess > 0:
      take = min(excess, int(counts[j]) - 1)
      counts[j] -= take
      excess -= take
    else:
      counts[j] -= excess
      excess = 0
    i += 1
  return np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)


def tables_from_pmfs(pmfs: Sequence[np.ndarray], offsets: Sequence[int],
                     precision: int = 16) -> CdfTables:
  """Builds coding tables; each pmf gets its tail mass appended as the escape symbol."""
  if not 1 <= precision <= 16:
    raise ValueError('precision must be in [1, 16]')
  parts, sizes = [], []
  for pmf in pmfs:
    pmf = np.asarray(pmf, np.float64)
    tail = max(1.0 - float(pmf.sum()), 0.0)
    cdf = pmf_to_quantized_cdf(np.concatenate([pmf, [tail]]), precision)
    parts.append(np.concatenate([[-precision], cdf]).astype(np.int32))
    sizes.append(pmf.size)
  return CdfTables(
      lookup=np.concatenate(parts).astype(np.int32),
      offsets=np.asarray(offsets, np.int32),
      sizes=np.asarray(sizes, np.int32))


def code_lengths(tables: CdfTables, table: int) -> np.ndarray:
  """Bits the coder spends on each in-range symbol of one table, float64[size]."""
  start = int(np.sum(tables.sizes[:table] + 3))  # each table: precision + cdf(size + 2)
  precision = -int(tables.lookup[start])
  cdf = tables.lookup[start + 1:start + 1 + int(tables.sizes[table]) + 2].astype(np.int64)
  counts = np.diff(cdf)[:-1]  # drop the escape symbol
  return precision - np.log2(counts)


def escape_symbol_bits(tables: CdfTables, table: int) -> float:
  """Bits of one table's escape symbol; an escaped value adds an Elias gamma code."""
  start = int(np.sum(tables.sizes[:table] + 3))
  precision = -int(tables.lookup[start])
  size = int(tables.sizes[table])
  cdf = tables.lookup[start + 1:start + 1 + size + 2].astype(np.int64)
  return float(precision - np.log2(cdf[-1] - cdf[-2]))
