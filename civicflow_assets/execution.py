"""Steps in parallel processes on one machine: Dagster's multiprocess executor, with a limit.

Each step runs in a process of its own, so raw loads of different tables, dbt and publications overlap.
The heavy lifting happens inside PostgreSQL (COPY, typing, merges, dbt models), so step processes beyond
half the machine's cores only queue up in the database. Step processes are forked from a forkserver that
imported the code location once (Dagster preloads the module the job was loaded from, here
civicflow_assets.definitions): a spawned process would import it again for every step, 5-6 s each on two cores.
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
        {"max_concurrent": max_concurrent or default_max_concurrent(), "start_method": {"forkserver": {}}},
        name="civicflow_multiprocess")
