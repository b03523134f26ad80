"""Numba kernels of the telemetry batch decoder, each beside its plain numpy reference.

Only decoding imports this module (`wire.codec` on its first decode, `wire.record_checks`): the
encoder, and so the edge agent, never loads numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def gather_segments(
    src: np.ndarray, starts: np.ndarray, lengths: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """Concatenate the byte segments src[starts[k] : starts[k] + lengths[k]] into `out`.

    The caller guarantees every segment lies inside `src` and that `out` holds exactly
    sum(lengths) bytes (no bounds checks here). `out` is allocated by numpy, whose large
    allocations use huge pages, instead of by numba's allocator, which page-faults more.
    """
    d = 0
    for k in range(starts.shape[0]):
        n = lengths[k]
        segment = src[starts[k] : starts[k] + n]
        target = out[d : d + n]
        for i in range(n):  # a plain loop over views compiles to a memcpy-speed copy;
            target[i] = segment[i]  # slice assignment goes through a slower generic path
        d += n
    return out


def gather_segments_reference(
    src: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """Numpy reference of `gather_segments`, by one fancy-indexing gather."""
    lengths = np.asarray(lengths, dtype=np.int64)
    dest = np.cumsum(lengths) - lengths
    index = np.repeat(np.asarray(starts, dtype=np.int64) - dest, lengths)
    index += np.arange(index.shape[0], dtype=np.int64)
    return src[index]


@njit(cache=True, nogil=True)
def within_limits(
    columns: np.ndarray, cols: np.ndarray, low: np.ndarray, high: np.ndarray, ok: np.ndarray
) -> None:
    """Clear ok[i] unless low[k] <= columns[i, cols[k]] <= high[k] for every k (NaN fails)."""
    for i in range(columns.shape[0]):
        good = True
        for k in range(cols.shape[0]):
            x = columns[i, cols[k]]
            good &= (x >= low[k]) & (x <= high[k])
        ok[i] &= good


def within_limits_reference(
    columns: np.ndarray, cols: np.ndarray, low: np.ndarray, high: np.ndarray, ok: np.ndarray
) -> None:
    """Numpy reference of `within_limits`."""
    values = columns[:, cols]
    ok &= ((values >= low) & (values <= high)).all(axis=1)
