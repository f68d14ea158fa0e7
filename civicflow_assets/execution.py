"""Steps in parallel processes on one machine: Dagster's multiprocess executor, with a limit.

Each step runs in a process of its own, so raw loads of different tables, dbt and publications overlap.
The heavy lifting happens inside PostgreSQL (COPY, typing, merges, dbt models), so step processes beyond
half the machine's cores only queue up in the database, and each costs ~4 s to start and a few hundred MB.
Runs are limited separately, by the run queue in dagster.yaml (`concurrency: runs:`).
"""

from __future__ import annotations

import os

from dagster import ExecutorDefinition, multiprocess_executor


def default_max_concurrent() -> int:
    return max(2, (os.cpu_count() or 2) // 2)


def civicflow_executor(max_concurrent: int | None = None) -> ExecutorDefinition:
    """The multiprocess executor, at most `max_concurrent` step processes at a time (default: half the cores)."""
    return multiprocess_executor.configured(
        {"max_concurrent": max_concurrent or default_max_concurrent()}, name="civicflow_multiprocess")
