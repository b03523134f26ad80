"""Prometheus metrics of the job runner (`luciole_jobs_*`), in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class JobMetrics:
    """Runs, failures, duration, records read (and of them, late), faults raised and lag, per
    job."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.runs = Counter("luciole_jobs_runs", "Passes run", ["job"], registry=r)
        self.failures = Counter("luciole_jobs_failures", "Passes that failed", ["job"],
                                registry=r)
        self.duration = Histogram("luciole_jobs_duration_seconds", "Duration of a pass", ["job"],
                                  registry=r,
                                  buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.records = Counter("luciole_jobs_records", "Records read", ["job"], registry=r)
        self.late_records = Counter("luciole_jobs_late_records",
                                    "Records read after the cursor had passed their time",
                                    ["job"], registry=r)
        self.faults_raised = Counter("luciole_jobs_faults_raised", "Faults raised", ["job"],
                                     registry=r)
        self.lag = Gauge("luciole_jobs_lag_seconds",
                         "Time between the newest stored record and the job's cursor", ["job"],
                         registry=r)
