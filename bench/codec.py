"""Benchmark of the ingest hot path: decode_batch on 1,000,000 luminaire records."""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from wire.codec import LUMINAIRE_DTYPE, decode_batch, encode_luminaire


def random_records(rng: np.random.Generator, n: int, now_us: int) -> np.ndarray:
    """Return `n` random luminaire records, all inside the valid ranges."""
    r = np.empty(n, dtype=LUMINAIRE_DTYPE)
    r["time_us"] = now_us - rng.integers(0, 86_400_000_000, n)
    r["luminaire"] = rng.integers(0, 1024, n)
    r["level"] = rng.integers(0, 256, n)
    r["status"] = rng.integers(0, 256, n)
    r["power_w"] = rng.uniform(0, 2000, n)
    r["energy_wh"] = rng.uniform(0, 1e9, n)
    r["voltage_v"] = rng.uniform(200, 250, n)
    r["current_a"] = rng.uniform(0, 20, n)
    r["power_factor"] = rng.uniform(0, 1, n)
    r["driver_temp_c"] = rng.uniform(-50, 150, n)
    r["ambient_lux"] = rng.uniform(0, 200_000, n)
    r["presence"] = rng.integers(0, 65536, n)
    r["failure"] = rng.integers(0, 256, n)
    return r


def best_of(runs: int, fn) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--per-message", type=int, default=50)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    now_us = int(time.time() * 1_000_000)
    rng = np.random.default_rng(42)
    print(f"building {args.records:,} records in messages of {args.per_message}", flush=True)
    records = random_records(rng, args.records, now_us)
    payloads = [
        encode_luminaire(7, i, records[i : i + args.per_message])
        for i in range(0, args.records, args.per_message)
    ]
    payload_bytes = sum(map(len, payloads))
    print(f"{len(payloads):,} payloads, {payload_bytes / 1e6:.1f} MB; warming the JIT", flush=True)
    batch = decode_batch(payloads, now_us)
    assert batch.luminaire.shape[0] == args.records and len(batch.rejects) == 0
    assert np.array_equal(batch.luminaire.view(np.uint8), records.view(np.uint8))

    seconds = best_of(args.runs, lambda: decode_batch(payloads, now_us))
    joined_records = records.tobytes()
    ceiling = best_of(
        args.runs, lambda: np.frombuffer(joined_records, dtype=LUMINAIRE_DTYPE).view(np.recarray)
    )
    copy_target = np.empty(len(joined_records), dtype=np.uint8)
    source = np.frombuffer(joined_records, dtype=np.uint8)
    copy_ceiling = best_of(args.runs, lambda: np.copyto(copy_target, source))
    rate = args.records / seconds
    print(f"decode_batch: best of {args.runs}: {seconds * 1e3:.2f} ms, "
          f"{rate / 1e6:.1f} M records/s, {payload_bytes / seconds / 1e6:.0f} MB/s")
    print(f"ceiling (np.frombuffer + view on joined bare records): {ceiling * 1e6:.1f} µs, "
          f"{args.records / ceiling / 1e6:,.0f} M records/s, "
          f"{len(joined_records) / ceiling / 1e9:,.0f} GB/s")
    print(f"for scale, one memcpy of those records: {copy_ceiling * 1e3:.2f} ms, "
          f"{args.records / copy_ceiling / 1e6:,.0f} M records/s")
    print(f"codec: {int(rate)} records/s")


if __name__ == "__main__":
    main()
