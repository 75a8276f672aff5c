"""How the simulated forward runs compare with the real forward runs of the corpus.

Noise levels of the simulator (device speed, GPS fixes, cadence, heart rate) were set against
these statistics; ``docs/ACCURACY.md`` shows the table. Both sides are decoded by retroingest's
own decoders, records moving faster than 1.8 m/s with cadence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

STAT_COLUMNS = ("speed_mps", "cadence_spm", "step_m", "cadence_sd", "step_p90_p10", "speed_jitter",
                "cadence_jitter", "hr_jitter", "short_step_share")


def run_stats(records: pl.DataFrame) -> dict[str, float] | None:
    """Per-activity statistics of forward running (None when under 300 running records).

    Jitters are standard deviations of 1 s differences; ``short_step_share`` is the share of
    records whose step is below 0.85 × the activity's median step.
    """
    r = records.filter((pl.col("speed_mps") > 1.8) & pl.col("cadence_spm").is_not_null())
    if r.height < 300:
        return None
    v = r["speed_mps"].to_numpy()
    c = r["cadence_spm"].to_numpy()
    hr = r["heart_rate_bpm"].to_numpy().astype(float)
    one = np.diff(r["elapsed_s"].to_numpy()) == 1
    step = v / (c / 60)
    with np.errstate(invalid="ignore"):
        return {
            "speed_mps": float(np.median(v)), "cadence_spm": float(np.median(c)), "step_m": float(np.median(step)),
            "cadence_sd": float(np.std(c)), "step_p90_p10": float(np.subtract(*np.percentile(step, [90, 10]))),
            "speed_jitter": float(np.std(np.diff(v)[one])) if one.any() else float("nan"),
            "cadence_jitter": float(np.std(np.diff(c)[one])) if one.any() else float("nan"),
            "hr_jitter": float(np.nanstd(np.diff(hr)[one])) if one.any() and np.isfinite(hr).sum() > 2 else float("nan"),
            "short_step_share": float(np.mean(step < 0.85 * np.median(step))),
        }


def _decode(path: Path):
    from retroingest.decode.fit import decode_fit
    from retroingest.decode.gpx import decode_gpx

    data = path.read_bytes()
    if path.suffix.lower() == ".fit":
        return decode_fit(data, str(path))
    if path.suffix.lower() == ".gpx":
        return decode_gpx(data, str(path))
    return None


def compare(sim_dir: Path, corpus: Path) -> pl.DataFrame:
    """Median statistics per source: real FIT / real GPX runs vs simulated FIT / GPX forward runs."""
    from retroingest.evaluate import corpus_selection
    from retroingest.simulate import read_manifest

    rows = []
    for p in corpus_selection(corpus)["runs"]:
        try:
            dec = _decode(p)
        except Exception:  # noqa: BLE001 - a corpus file our decoders reject is simply not compared
            continue
        for act in dec.activities if dec else []:
            s = run_stats(act.records)
            if s:
                rows.append({"source": f"real {p.suffix[1:].lower()}", **s})
    m = read_manifest(sim_dir / "manifest.csv").filter(
        pl.col("scenario").is_in(["easy_run", "recovery_jogs", "hills", "trail", "gps_drift_standing"]))
    for f in m.iter_rows(named=True):
        dec = _decode(sim_dir / f["file"])
        s = run_stats(dec.activities[0].records)
        if s:
            rows.append({"source": f"simulated {f['format']}", **s})
    df = pl.DataFrame(rows)
    return df.group_by("source").agg(pl.len().alias("activities"),
                                     *[pl.col(c).median().round(3) for c in STAT_COLUMNS]).sort("source")


if __name__ == "__main__":  # python -m retroingest.simulate.realism SIM_DIR [CORPUS]
    import sys

    from retroingest.evaluate import default_corpus

    pl.Config.set_tbl_cols(20)
    pl.Config.set_tbl_width_chars(250)
    print(compare(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else default_corpus()))
