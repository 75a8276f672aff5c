"""The simulator's one entry: write a set of activity files, their ground truth and a manifest."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from retroingest.simulate.athletes import Athlete, draw_athlete
from retroingest.simulate.scenarios import pick_builders
from retroingest.simulate.signals import DIRECTIONS, GAITS, Rendered, draw_config, render
from retroingest.simulate.writers import GPX_CREATORS, write_fit, write_gpx

SESSIONS_PER_ATHLETE = 4
TRUTH_SUFFIX = ".truth.csv"
MANIFEST = "manifest.csv"
# Seeds below this are development seeds (tests, tuning); the accuracy harness uses only seeds
# at or above it, so its numbers come from data nobody tuned on.
DEV_SEED_LIMIT = 10_000

MANIFEST_COLUMNS = (
    "file", "format", "scenario", "athlete_id", "body_mass_kg", "device_serial", "has_gps", "has_cadence",
    "has_hr", "sampling", "gpx_cadence_convention",
    # extras beyond the brief's list
    "kind", "sport", "sub_sport", "venue", "weight_in_file", "has_dynamics", "utc_offset_s",
    "start_time", "n_seconds", "n_records", "backward_s", "manual_laps", "hr_cadence_lock", "truth",
    # the athlete's backward gait against the forward one (what the data can show at best)
    "run_cadence_excess", "walk_cadence_excess", "run_hr_surcharge_bpm", "walk_hr_surcharge_bpm",
    # today's HR against the athlete's usual one at the same effort
    "hr_day_offset_bpm",
)
HR_DAY_SD_BPM = 4.0   # day-to-day SD of exercise HR at one effort (sources where it is drawn)


@dataclass(frozen=True)
class SimulatedFile:
    """One written activity file and what is true about it."""

    file: str                  # file name inside out_dir
    path: Path
    truth_path: Path
    format: str                # fit | gpx
    scenario: str
    kind: str                  # backward | negative | stroll
    athlete_id: str
    body_mass_kg: float
    device_serial: int
    has_gps: bool
    has_cadence: bool
    has_hr: bool
    sampling: str              # 1s | smart
    gpx_cadence_convention: str
    sport: str
    sub_sport: str
    venue: str
    weight_in_file: bool
    has_dynamics: bool
    utc_offset_s: int
    start_time: dt.datetime
    n_seconds: int
    n_records: int
    backward_s: int
    manual_laps: bool = True
    hr_cadence_lock: bool = False
    run_cadence_excess: float = float("nan")     # Athlete.cadence_excess("run")
    walk_cadence_excess: float = float("nan")
    run_hr_surcharge_bpm: float = float("nan")   # extra steady HR backward at the same speed
    walk_hr_surcharge_bpm: float = float("nan")
    hr_day_offset_bpm: float = 0.0


def truth_frame(r: Rendered, t0: dt.datetime) -> pl.DataFrame:
    """Contiguous truth intervals covering the activity, first record to last record (UTC)."""
    code = r.gait.astype(np.int16) * 3 + r.direction
    cut = np.flatnonzero(np.diff(code) != 0) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [r.n - 1]])
    gait = np.array(GAITS)[r.gait[starts]]
    direction = np.array(DIRECTIONS)[r.direction[starts]]
    base = pl.lit(t0, dtype=pl.Datetime("us", "UTC"))
    return pl.DataFrame({"s": starts, "e": ends, "gait": gait, "direction": direction}).select(
        (base + pl.duration(seconds=pl.col("s"))).alias("start_time"),
        (base + pl.duration(seconds=pl.col("e"))).alias("end_time"),
        "gait", "direction",
    ).filter(pl.col("end_time") > pl.col("start_time"))


def write_truth(path: Path, truth: pl.DataFrame) -> None:
    """Write truth intervals as CSV with ISO-8601 UTC times (…Z); stationary has an empty direction."""
    truth.select(
        pl.col("start_time").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        pl.col("end_time").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gait", "direction",
    ).write_csv(path)


def read_truth(path: Path) -> pl.DataFrame:
    """Read a truth CSV back: start_time/end_time as UTC datetimes, direction NULL when stationary."""
    return pl.read_csv(path, schema_overrides={"start_time": pl.String, "end_time": pl.String,
                                               "direction": pl.String}).select(
        pl.col("start_time").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC"),
        pl.col("end_time").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC"),
        "gait",
        pl.when(pl.col("direction") == "").then(None).otherwise(pl.col("direction")).alias("direction"),
    )


def _schedule(rng: np.random.Generator, athletes: list[Athlete], n: int) -> list[tuple[Athlete, dt.datetime]]:
    """Session i belongs to athlete i mod k and starts in its own 12 h slot (UTC).

    Sessions never overlap in time: one warehouse holds one household's or club's files, and its
    loader rightly treats overlapping recordings as copies of the same activity.
    """
    base = dt.datetime(2025, 1, 6, tzinfo=dt.timezone.utc) + dt.timedelta(days=int(rng.integers(0, 300)))
    out = []
    for i in range(n):
        a = athletes[i % len(athletes)]
        t = base + dt.timedelta(hours=12 * i + rng.uniform(0, 8))
        out.append((a, t.replace(microsecond=0)))
    return out


def simulate(out_dir: Path, n: int, seed: int) -> list[SimulatedFile]:
    """Write n simulated activity files (FIT/GPX) with truth CSVs and a manifest into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ss = np.random.SeedSequence(seed)
    plan_seq, athlete_seq, *file_seqs = ss.spawn(2 + n)
    plan = np.random.default_rng(plan_seq)
    n_athletes = max(1, int(round(n / SESSIONS_PER_ATHLETE)))
    arng = np.random.default_rng(athlete_seq)
    athletes = [draw_athlete(arng, i) for i in range(n_athletes)]
    builders = pick_builders(plan, n)
    # random order: which scenario comes first in an athlete's history must not follow the
    # coverage list (else "first session" and "scenario" would be confounded)
    builders = [builders[i] for i in plan.permutation(n)]
    schedule = _schedule(plan, athletes, n)
    # formats: treadmill sessions are FIT (a GPX track needs positions); ~25 % of the rest GPX,
    # at least two GPX files (one per cadence convention) when the set has room for them
    is_gpx = plan.uniform(size=n) < 0.25
    outdoor = [i for i, b in enumerate(builders) if "treadmill" not in b.__name__]
    for i in outdoor[1:3]:
        if sum(is_gpx[j] for j in outdoor) >= 2:
            break
        is_gpx[i] = True
    n_gpx = 0
    files: list[SimulatedFile] = []
    for i, (builder, (athlete, t0)) in enumerate(zip(builders, schedule)):
        rng = np.random.default_rng(file_seqs[i])
        session = builder(athlete, rng)
        # later additions draw from their own stream, so earlier choices of a seed stay as they were
        extra = np.random.default_rng(file_seqs[i].spawn(1)[0])
        # half the athletes press lap at every rep; the others leave it to auto-lap
        if not extra.uniform() < 0.5:
            session.manual_laps = False
            session.auto_lap_m = session.auto_lap_m or (400.0 if session.sub_sport == "track" else 1000.0)
        fmt = "gpx" if (is_gpx[i] and session.venue != "treadmill") else "fit"
        cfg = draw_config(rng, athlete, session, fmt)
        # optical HR "cadence lock" in ~5 % of files: for 1-5 min the wrist sensor reports the
        # arm-swing (step) frequency as heart rate (a known wrist-HR artefact while running)
        if cfg.has_hr and extra.uniform() < 0.05:
            cfg.hr_lock = (float(extra.uniform(0.1, 0.8)), int(extra.integers(60, 300)))
        # the same effort costs a few beats more or less from one day to the next: SD 1.1-1.4 %
        # (~2 bpm) in the lab at the same time of day (Lamberts et al. 2004, JSCR 18:641), 2.0-6.7
        # bpm between weekly tests (Taylor 1972, Med Sci Sports 4:14); outdoors (heat, sleep,
        # caffeine) nearer the upper end
        session.hr_day_offset_bpm = float(np.clip(extra.normal(0.0, HR_DAY_SD_BPM), -9.0, 9.0))
        if fmt == "gpx":
            if n_gpx < 2:   # the first two GPX files show both conventions, with cadence
                cfg.gpx_cadence_convention = ("strides_per_min", "steps_per_min")[n_gpx]
                cfg.has_cadence = True
            n_gpx += 1
        r = render(session, athlete, cfg, rng)
        local = t0 + dt.timedelta(seconds=athlete.utc_offset_s)
        stem = f"{athlete.athlete_id}_{local:%Y%m%dT%H%M}_{i:03d}"
        path = out_dir / f"{stem}.{fmt}"
        if fmt == "fit":
            n_rec = write_fit(path, r, session, athlete, cfg, t0)
        else:
            n_rec = write_gpx(path, r, session, athlete, cfg, t0, str(rng.choice(GPX_CREATORS)))
        truth_path = out_dir / f"{stem}{TRUTH_SUFFIX}"
        write_truth(truth_path, truth_frame(r, t0))
        files.append(SimulatedFile(
            file=path.name, path=path, truth_path=truth_path, format=fmt, scenario=session.scenario,
            kind=session.kind, athlete_id=athlete.athlete_id, body_mass_kg=athlete.body_mass_kg,
            device_serial=athlete.device_serial, has_gps=cfg.has_gps, has_cadence=cfg.has_cadence,
            has_hr=cfg.has_hr, sampling=cfg.sampling, gpx_cadence_convention=cfg.gpx_cadence_convention,
            sport=session.sport, sub_sport=session.sub_sport, venue=session.venue,
            weight_in_file=cfg.weight_in_file, has_dynamics=cfg.has_dynamics,
            utc_offset_s=athlete.utc_offset_s, start_time=t0, n_seconds=r.n, n_records=n_rec,
            backward_s=int((r.direction == 2).sum()), manual_laps=session.manual_laps,
            hr_cadence_lock=cfg.hr_lock is not None,
            run_cadence_excess=round(athlete.cadence_excess("run"), 4),
            walk_cadence_excess=round(athlete.cadence_excess("walk"), 4),
            run_hr_surcharge_bpm=round(athlete.br_hr_surcharge, 2),
            walk_hr_surcharge_bpm=round(athlete.bw_hr_surcharge, 2),
            hr_day_offset_bpm=round(session.hr_day_offset_bpm, 2),
        ))
    write_manifest(out_dir / MANIFEST, files)
    return files


def write_manifest(path: Path, files: list[SimulatedFile]) -> None:
    """manifest.csv: one row per file with scenario, athlete and recording conditions."""
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        for f in files:
            row = asdict(f)
            row["truth"] = f.truth_path.name
            row["start_time"] = f.start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
            w.writerow({k: (str(v).lower() if isinstance(v, bool) else v) for k, v in row.items()
                        if k in MANIFEST_COLUMNS})


def read_manifest(path: Path) -> pl.DataFrame:
    """Read manifest.csv written by :func:`simulate`."""
    return pl.read_csv(path, schema_overrides={"gpx_cadence_convention": pl.String, "device_serial": pl.String})
