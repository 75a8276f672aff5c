"""``retroingest serve``: keep the nightly import scheduled.

1. Without PREFECT_API_URL, start a local Prefect server (127.0.0.1, free port, PREFECT_HOME in
   ``<repo>/.prefect`` unless set); with it, use that server (or Prefect Cloud).
2. Serve the ``nightly-import/nightly`` deployment on a cron schedule (``[pipelines] cron``,
   default 03:00) in the local time zone (``[pipelines] timezone``, default this machine's),
   at most one run at a time. Blocks until interrupted; stops the server it started.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEPLOYMENT = "nightly"


def local_timezone() -> str:
    """This machine's IANA time zone name ($TZ, /etc/timezone, /etc/localtime), else UTC."""
    from zoneinfo import ZoneInfo

    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    try:
        candidates.append(os.path.realpath("/etc/localtime").split("zoneinfo/", 1)[1])
    except (OSError, IndexError):
        pass
    for name in candidates:
        if not name:
            continue
        try:
            ZoneInfo(name)
            return name
        except (ValueError, KeyError, OSError):
            continue
    return "UTC"


def main(cron: str | None = None, timezone: str | None = None, warehouse_path: str | None = None,
         config_path: str | None = None, prefect_home: str | None = None) -> None:
    """Start (or reuse) a Prefect server and serve the nightly deployment; blocks."""
    from retroingest import config, warehouse
    from pipelines.server import LocalServer, offline_env

    cfg = config.load(config_path)
    settings = config.pipelines(cfg)
    home = prefect_home or os.environ.get("PREFECT_HOME") or str(REPO / ".prefect")
    os.environ.update(offline_env(home))
    # flow runs start in subprocesses that load pipelines/flows.py by path: they need the repo importable
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    server = None
    if not os.environ.get("PREFECT_API_URL"):
        print(f"starting a local Prefect server (PREFECT_HOME={home}) ...", flush=True)
        server = LocalServer(home).start()
        os.environ["PREFECT_API_URL"] = server.api_url
    api_url = os.environ["PREFECT_API_URL"]
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        from prefect.schedules import Cron
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from pipelines.flows import nightly_import

        cron = cron or settings["cron"]
        tz = timezone or settings["timezone"] or local_timezone()
        params = {"warehouse_path": str(Path(warehouse_path or warehouse.default_path()).absolute()),
                  "config_path": str(config.config_path(config_path).absolute())
                  if config.config_path(config_path).exists() else None}
        info = {"api_url": api_url, "ui_url": api_url.removesuffix("/api"), "deployment": f"nightly-import/{DEPLOYMENT}",
                "cron": cron, "timezone": tz, "parameters": params, "pid": os.getpid(),
                "server_pid": server.proc.pid if server else None}
        Path(home).mkdir(parents=True, exist_ok=True)
        (Path(home) / "retroingest-serve.json").write_text(json.dumps(info, indent=1))
        print(f"Prefect API {api_url}; UI {info['ui_url']}; serving {info['deployment']} at '{cron}' {tz}", flush=True)
        with temporary_settings({PREFECT_API_URL: api_url}):
            nightly_import.serve(name=DEPLOYMENT, schedule=Cron(cron, timezone=tz), parameters=params,
                                 global_limit=1, paused=False, pause_on_shutdown=False,
                                 description="Copy new watch files and import sources (retroingest)",
                                 tags=["retroingest"])
    except KeyboardInterrupt:
        pass
    finally:
        if server:
            server.stop()


if __name__ == "__main__":  # python -m pipelines.serve [cron] [timezone]
    main(*(sys.argv[1:3]))
