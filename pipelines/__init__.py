"""Prefect flows over the retroingest library: scheduling, retries and parallelism only.

``flows``: nightly_import, backfill, reclassify. ``runners``: the bounded task runner choice
(thread, process, dask). ``server``/``serve``: ``retroingest serve`` (a local Prefect server
when PREFECT_API_URL is not set, and the nightly deployment on a cron schedule).
"""
