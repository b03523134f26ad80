"""A batch's luminaire readings reduced to what the fold needs, from the arrays ingest holds.

One segment per (controller, luminaire, 15-minute bucket) of the batch: its last reading (the live
state) and, over its metered readings (energy present), the first and the last (time, seq, energy),
the energy between consecutive ones (a negative step is a counter reset: the new counter counts
from 0) and their number. The fold chains segments per luminaire as it chained readings: the
energy of a segment's first metered reading is counted against the reading before it (the previous
segment's last, or the luminaire's cursor), the rest is already summed here. A batch that holds
several polls of a luminaire (a backlog after an outage) thus queues one row per luminaire and
bucket instead of one per reading, and the fold reads the readings back from nowhere.

Pure numpy; `reference_segments` is the plain-Python oracle the tests compare with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from wire.records import LuminaireFailure

BUCKET_US = 900_000_000
ABSENT_POWER = int(LuminaireFailure.ABSENT_POWER)

# the live-state columns carried from each segment's last reading
STATE_FIELDS = ("level", "status", "power_w", "energy_wh", "voltage_v", "power_factor",
                "driver_temp_c", "failure")


@dataclass(frozen=True)
class Segments:
    """Column arrays, one element per segment (metered fields are 0 where m_samples is 0)."""

    controller_key: np.ndarray
    luminaire: np.ndarray
    time_us: np.ndarray  # the last reading's
    seq: np.ndarray
    state: dict[str, np.ndarray]  # STATE_FIELDS of the last reading
    readings: np.ndarray  # readings in the segment
    m_first_time_us: np.ndarray
    m_first_seq: np.ndarray
    m_first_wh: np.ndarray
    m_last_time_us: np.ndarray
    m_last_seq: np.ndarray
    m_last_wh: np.ndarray
    m_inner_wh: np.ndarray
    m_samples: np.ndarray

    def __len__(self) -> int:
        return int(self.controller_key.shape[0])


def build(controller_key: np.ndarray, records: np.ndarray, seq: np.ndarray) -> Segments:
    """Segments of a batch's stored readings: `records` luminaire records (wire LUMINAIRE_DTYPE),
    `controller_key` and `seq` per record."""
    n = records.shape[0]
    time_us = records["time_us"].astype(np.int64)
    lum = records["luminaire"].astype(np.int64)
    ctl = np.asarray(controller_key, dtype=np.int64)
    seq = np.asarray(seq, dtype=np.int64)
    bucket = time_us // BUCKET_US
    order = np.lexsort((seq, time_us, bucket, lum, ctl))
    ctl, lum, bucket, time_us, seq = ctl[order], lum[order], bucket[order], time_us[order], seq[order]
    rec = records[order]
    if n:
        change = (ctl[1:] != ctl[:-1]) | (lum[1:] != lum[:-1]) | (bucket[1:] != bucket[:-1])
        starts = np.flatnonzero(np.concatenate(([True], change)))
    else:
        starts = np.zeros(0, dtype=np.int64)
    ends = np.append(starts[1:], n) - 1 if n else starts  # last row of each segment
    groups = starts.shape[0]
    group_of = np.repeat(np.arange(groups), np.diff(np.append(starts, n)))

    metered = (rec["failure"].astype(np.int64) & ABSENT_POWER) == 0
    mi = np.flatnonzero(metered)
    mg = group_of[mi]
    energy = rec["energy_wh"].astype(np.float64)
    m_samples = np.bincount(mg, minlength=groups).astype(np.int32)
    first = np.zeros(groups, dtype=np.int64)
    last = np.zeros(groups, dtype=np.int64)
    inner = np.zeros(groups, dtype=np.float64)
    if mi.shape[0]:
        head = np.concatenate(([True], mg[1:] != mg[:-1]))
        tail = np.concatenate((mg[1:] != mg[:-1], [True]))
        first[mg[head]] = mi[head]
        last[mg[tail]] = mi[tail]
        e = energy[mi]
        step = np.where(e[1:] >= e[:-1], e[1:] - e[:-1], e[1:])  # a reset counts from 0
        inner = np.bincount(mg[1:][~head[1:]], weights=step[~head[1:]],
                            minlength=groups).astype(np.float64)
    has = m_samples > 0

    def pick(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.where(has, values[rows], 0).astype(values.dtype)

    return Segments(
        controller_key=ctl[starts].astype(np.int32), luminaire=lum[starts].astype(np.int16),
        time_us=time_us[ends], seq=seq[ends],
        state={f: rec[f][ends] for f in STATE_FIELDS},
        readings=np.diff(np.append(starts, n)).astype(np.int32),
        m_first_time_us=pick(time_us, first), m_first_seq=pick(seq, first),
        m_first_wh=pick(energy, first),
        m_last_time_us=pick(time_us, last), m_last_seq=pick(seq, last), m_last_wh=pick(energy, last),
        m_inner_wh=inner.astype(np.float64), m_samples=m_samples,
    )


# --- pure reference ----------------------------------------------------------------------


def fold_reference(batches: Iterable[Segments]) -> dict[tuple[int, int, int], tuple[float, int]]:
    """Chain the segments of batches in order, per luminaire by (first time, first seq), as the
    fold does for in-order data: {(controller, luminaire, bucket_start_us): (energy_wh, samples)}.
    Equal to `ingest.rollup.reference_buckets` of the same readings when no batch's readings
    interleave with another's (the fold recomputes from the hypertable when they do)."""
    rows: dict[tuple[int, int], list[tuple[int, int, float, float, int, float]]] = {}
    for s in batches:
        for i in range(len(s)):
            if s.m_samples[i] == 0:
                continue
            rows.setdefault((int(s.controller_key[i]), int(s.luminaire[i])), []).append(
                (int(s.m_first_time_us[i]), int(s.m_first_seq[i]), float(s.m_first_wh[i]),
                 float(s.m_last_wh[i]), int(s.m_samples[i]), float(s.m_inner_wh[i])))
    out: dict[tuple[int, int, int], tuple[float, int]] = {}
    for (ctl, lum), segs in rows.items():
        segs.sort()
        before: float | None = None
        for t, _seq, first_wh, last_wh, samples, inner in segs:
            if before is None:
                delta = 0.0
            elif first_wh >= before:
                delta = first_wh - before
            else:
                delta = first_wh
            key = (ctl, lum, t - t % BUCKET_US)
            total, n = out.get(key, (0.0, 0))
            out[key] = (total + delta + inner, n + samples)
            before = last_wh
    return out
