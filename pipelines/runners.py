"""Task runners for the decode fan-out, bounded, chosen by name (docs/SCALING.md)."""

from __future__ import annotations

from typing import Any

RUNNERS = ("thread", "process", "dask")


def make_task_runner(kind: str = "thread", workers: int = 2, dask_address: str | None = None) -> Any:
    """A bounded Prefect task runner: threads (default), spawned processes, or a Dask cluster.

    ``dask`` with ``dask_address`` connects to an existing scheduler (tcp://host:8786); without
    one it starts a LocalCluster of ``workers`` single-threaded worker processes. Needs the extra
    ``retroingest[dask]`` (prefect-dask).
    """
    if kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers)
    if kind == "process":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=workers)
    if kind == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:  # pragma: no cover - depends on the optional extra
            raise RuntimeError("task_runner = 'dask' needs prefect-dask: pip install 'retroingest[dask]'") from exc
        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    raise ValueError(f"unknown task runner {kind!r}; choose one of {', '.join(RUNNERS)}")
