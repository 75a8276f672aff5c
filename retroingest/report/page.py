"""The HTML page: one self-contained file with inline CSS, SVG and a little JavaScript.

A Content-Security-Policy meta tag forbids every network load, so the page provably works
offline: anything that tried to fetch would be blocked and logged as a console error (which
tests/test_report_browser.py looks for).
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any, Iterable

from retroingest.report import svg
from retroingest.report.data import ActivityDetail, ReportData

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
LONG_ROAD_BOUT_S = 300
WEEKS_SHOWN = 26

CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--card:#f6f8fa;--bwrun:#d9480f;--bwwalk:#7048e8;
--fw:#8c959f;--claims:#cf222e;--evidence:#0969da;--warn:#9a6700}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{padding:18px 28px;border-bottom:1px solid var(--line)}header h1{margin:0 0 4px;font-size:22px}
main{max-width:1100px;margin:0 auto;padding:8px 28px 40px}section{margin:26px 0}h2{font-size:18px;margin:0 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}.muted{color:var(--muted)}.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:10px 14px;min-width:150px}
.card .v{font-size:20px;font-weight:600}.card .k{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--card);font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.note{border-left:4px solid var(--evidence);background:#ddf4ff;padding:8px 12px;border-radius:4px;margin:8px 0}
.warn{border-left-color:var(--warn);background:#fff8c5}.ok{border-left-color:#1a7f37;background:#dafbe1}
svg.chart{width:100%;height:auto;display:block;margin:6px 0}svg.route{max-width:380px;border:1px solid var(--line);border-radius:6px;background:#fbfcfd}
.grid{stroke:#eaeef2}.tick{font-size:10px;fill:var(--muted)}.axis{font-size:11px;fill:var(--muted)}.label{font-size:12px;font-weight:600;fill:var(--fg)}
.value{font-size:11px;fill:var(--fg)}.bar{fill:var(--bwrun);opacity:.85}.bar:hover{opacity:1}.trend{fill:none;stroke:var(--fg);stroke-width:1.5;stroke-dasharray:4 3}
.claims{fill:var(--claims);opacity:.8}.evidence{fill:var(--evidence);opacity:.85}.band{stroke:#0a3069;stroke-width:3}
.panel{fill:none;stroke:#eaeef2}.series{fill:none;stroke-width:1.2}.s-speed{stroke:#0969da}.s-cadence{stroke:#1a7f37}.s-heart_rate{stroke:#cf222e}
.shade-run{fill:var(--bwrun);opacity:.18}.ctx-track{fill:#1a7f37}.ctx-treadmill{fill:#0969da}.ctx-road{fill:#bf8700}
.ctx-unknown{fill:#8c959f}.inbar{fill:#fff;font-size:12px}.shade-walk{fill:var(--bwwalk);opacity:.18}
svg.route polyline{fill:none;stroke-width:2.2;stroke-linejoin:round;stroke-linecap:round}svg.route .fw{stroke:var(--fw);stroke-width:1.4}
svg.route .bw-run{stroke:var(--bwrun);stroke-width:3}svg.route .bw-walk{stroke:var(--bwwalk);stroke-width:3}svg.route .start{fill:#1a7f37}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:4px}
.row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}.row>div{flex:1 1 340px}
.verdict-overstated{color:var(--claims);font-weight:600}.verdict-plausible{color:#1a7f37;font-weight:600}
#tip{position:fixed;pointer-events:none;background:#1f2328;color:#fff;font-size:12px;padding:3px 7px;border-radius:4px;display:none;z-index:9}
nav.picker{margin:6px 0 12px}footer{color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:10px}
"""

JS = """
"use strict";
(function () {
  var tip = document.getElementById("tip");
  document.addEventListener("mousemove", function (ev) {
    var t = ev.target && ev.target.closest ? ev.target.closest("[data-tip]") : null;
    if (!t) { tip.style.display = "none"; return; }
    tip.textContent = t.getAttribute("data-tip");
    tip.style.left = (ev.clientX + 12) + "px";
    tip.style.top = (ev.clientY + 12) + "px";
    tip.style.display = "block";
  });
  var picker = document.getElementById("activity-picker");
  var panels = document.querySelectorAll("section.activity");
  function show(id) {
    for (var i = 0; i < panels.length; i++) {
      panels[i].hidden = (id !== "all" && panels[i].id !== id);
    }
  }
  if (picker) {
    picker.addEventListener("change", function () { show(picker.value); });
    document.querySelectorAll("a.goto").forEach(function (a) {
      a.addEventListener("click", function () {
        var id = a.getAttribute("href").slice(1);
        if (document.getElementById(id)) { picker.value = id; show(id); }
      });
    });
    show(picker.value);
  }
  document.body.setAttribute("data-ready", "1");
})();
"""


# ---- formatting ----------------------------------------------------------------------------

def dur(s: float | None) -> str:
    """Seconds as h:mm:ss or m:ss."""
    if s is None:
        return "–"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def km(m: float | None, digits: int = 2) -> str:
    return "–" if m is None else f"{m / 1000:.{digits}f} km"


def pace(s_per_km: float | None) -> str:
    return "–" if s_per_km is None else f"{dur(s_per_km)} /km"


def num(v: float | None, digits: int = 0, unit: str = "") -> str:
    if v is None:
        return "–"
    return f"{v:,.{digits}f}" + (f" {unit}" if unit else "")


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def _table(headers: Iterable[tuple[str, bool]], rows: Iterable[Iterable[str]], css_class: str = "") -> str:
    """headers: (title, numeric); cells are already-escaped HTML."""
    hs = list(headers)
    head = "".join(f'<th class="n">{escape(h)}</th>' if n else f"<th>{escape(h)}</th>" for h, n in hs)
    body = "".join("<tr>" + "".join(f'<td class="n">{c}</td>' if hs[i][1] else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _card(value: str, label: str) -> str:
    return f'<div class="card"><div class="v">{escape(value)}</div><div class="k">{escape(label)}</div></div>'


# ---- sections ------------------------------------------------------------------------------

def _summary(d: ReportData) -> str:
    t = d.totals
    if not t["n_activities"]:
        return ('<section id="summary"><h2>Summary</h2><p class="note">The warehouse holds no activities yet. '
                'Import some with <code>retroingest ingest PATH</code>, then run <code>retroingest report</code> '
                'again.</p></section>')
    span = f"{t['first_date']} – {t['last_date']}"
    cards = [
        _card(str(t["n_activities"]), f"foot-sport activities ({span})"),
        _card(str(t["n_with_backward"]), "with backward work"),
        _card(dur(t["backward_time_s"]), "backward time"),
        _card(km(t["backward_distance_m"]), "backward distance"),
        _card(pct(t["backward_time_s"] / t["moving_time_s"] if t["moving_time_s"] else None),
              "of moving time was backward"),
    ]
    note = ""
    if t["n_classified"] < t["n_activities"]:
        note = (f'<p class="note warn">{t["n_activities"] - t["n_classified"]} of {t["n_activities"]} activities '
                f'are not classified yet; run <code>retroingest classify</code> to look for backward bouts.</p>')
    return f'<section id="summary"><h2>Summary</h2><div class="cards">{"".join(cards)}</div>{note}</section>'


def _weekly(d: ReportData) -> str:
    head = '<section id="weekly"><h2>Weekly backward volume</h2>'
    if not d.weekly:
        return head + '<p class="muted">No weeks with activities yet.</p></section>'
    weeks = d.weekly[-WEEKS_SHOWN:]
    fmt = "%d %b" if weeks[0]["week_start"].year == weeks[-1]["week_start"].year else "%d %b %y"
    labels = [w["week_start"].strftime(fmt) for w in weeks]
    minutes = [w["backward_time_s"] / 60 for w in weeks]
    avg = [None if w["backward_time_4wk_avg_s"] is None else w["backward_time_4wk_avg_s"] / 60 for w in weeks]
    tips = [f"week of {w['week_start']}: {dur(w['backward_time_s'])} backward, {km(w['backward_distance_m'])}, "
            f"{pct(w['backward_time_s'] / w['moving_time_s'] if w['moving_time_s'] else None)} of moving time"
            for w in weeks]
    chart = svg.bar_chart(labels, minutes, line=avg, tips=tips, y_label="backward minutes per week",
                          css_id="weekly-chart")
    if len(d.weekly) > WEEKS_SHOWN:
        chart += (f'<p class="muted">The last {WEEKS_SHOWN} weeks up to the latest activity; '
                  f'{len(d.weekly) - WEEKS_SHOWN} earlier weeks are in the view <code>v_backward_weekly</code>.</p>')
    last = d.weekly[-1]
    prev = d.weekly[-2] if len(d.weekly) > 1 else None
    change = ""
    if prev and prev["backward_time_s"]:
        change = f"; {100 * (last['backward_time_s'] / prev['backward_time_s'] - 1):+.0f} % on the week before"
    return (head + chart + '<p class="legend"><span><i class="sw" style="background:var(--bwrun)"></i>backward '
            'minutes</span><span>- - 4-week mean</span></p>'
            f'<p class="muted">Latest week ({last["week_start"]}): {dur(last["backward_time_s"])} backward{change}. '
            'Build backward volume gradually: it loads the quadriceps and calves in a new way.</p></section>')


MYTHS = {
    "forward_equivalent_distance": ("“One backward lap equals six forward laps” (×6)",
                                    "Measured cost per distance is 1.15–1.40× for running (Williford 1998; "
                                    "Wright & Weyand 2001; Rasica 2020) and 1.25–1.5× for walking."),
    "forward_equivalent_steps": ("“100 backward steps equal 1,000 forward steps” (×10)",
                                 "A backward step costs about 0.8–1.1 forward steps walking (shorter steps, "
                                 "Laufer 2005), about 1.15–1.2 running."),
    "energy": ("“30 minutes burns 400 kcal”",
               "ACSM running equation with r = 1.35 on the net term; Compendium code 17320 (6.0 MET) or ACSM "
               "walking × 1.4 for backward walking. Plausible for running at moderate effort, not for walking."),
}


def _claims(d: ReportData) -> str:
    head = ('<section id="claims"><h2>Claims vs evidence, for your own backward work</h2>'
            '<p class="muted">Popular articles make big claims about backward running. Here they are applied '
            'to your data next to what measured studies support (profiles <code>seed_claims</code> and '
            '<code>evidence</code>; see docs/METRICS.md).</p>')
    rows = [r for r in d.claims_totals if r["gait"] == "all"]
    if not rows:
        return head + '<p class="note">No backward segments found yet, so there is nothing to compare.</p></section>'
    out = [head]
    for athlete in sorted({r["athlete_id"] for r in rows}):
        mine = [r for r in rows if r["athlete_id"] == athlete]
        if len({r["athlete_id"] for r in rows}) > 1:
            out.append(f"<h3>Athlete {escape(athlete)}</h3>")
        bars = []
        for r in mine:
            label = {"forward_equivalent_distance": "Forward-equivalent distance",
                     "forward_equivalent_steps": "Forward-equivalent steps", "energy": "Energy"}[r["metric"]]
            bars.append({"label": label, "unit": r["unit"], "claims": r["claims_value"],
                         "evidence": r["evidence_value"], "low": r["evidence_low"], "high": r["evidence_high"],
                         "note": f"claims ÷ evidence = {num(r['claims_over_evidence'], 1)}"})
        out.append(svg.comparison_bars(bars))
        out.append('<p class="legend"><span><i class="sw" style="background:var(--claims)"></i>popular claim</span>'
                   '<span><i class="sw" style="background:var(--evidence)"></i>evidence (line: low–high band)'
                   '</span></p>')
        table_rows, explained = [], set()
        for r in [x for x in d.claims_totals if x["athlete_id"] == athlete]:
            myth, why = MYTHS[r["metric"]]
            why = "" if r["metric"] in explained else why  # explain each claim once
            explained.add(r["metric"])
            table_rows.append([
                escape(myth), escape(r["gait"]),
                escape(num(r["backward_value"], 0, r["unit"]) if r["backward_value"] is not None
                       else dur(r["backward_time_s"])),
                escape(num(r["claims_value"], 0, r["unit"])),
                escape(num(r["evidence_value"], 0, r["unit"])) + f'<br><span class="muted">'
                f'{escape(num(r["evidence_low"], 0))}–{escape(num(r["evidence_high"], 0))}</span>',
                f'<span class="verdict-{escape(r["verdict"])}">{escape(r["verdict"])}</span>'
                f' ×{escape(num(r["claims_over_evidence"], 1))}',
                f'<span class="muted">{escape(why)}</span>',
            ])
        out.append(_table([("claim", False), ("gait", False), ("your backward work", True), ("claims say", True),
                           ("evidence says", True), ("verdict", False), ("why", False)], table_rows, "claims-table"))
        if any(r["body_mass_assumed"] for r in mine):
            out.append('<p class="note warn">Some energy figures assume a body mass of 70 kg: the file had none '
                       'and no <code>[athletes.&lt;id&gt;] body_mass_kg</code> is configured.</p>')
    if d.profiles:
        prow = [[f"<code>{escape(p['profile'])}</code>", escape(p["source"]), escape(p["description"] or ""),
                 escape(f"×{p['run_distance_ratio']:g} / ×{p['walk_distance_ratio']:g}"), escape(p["energy_model"]),
                 escape(km(p["fwd_distance_m"])), escape(num(p["fwd_steps"])), escape(num(p["energy_kcal"], 0, "kcal"))]
                for p in d.profiles]
        out.append("<h3>Every active profile</h3>" + _table(
            [("profile", False), ("source", False), ("description", False), ("distance run / walk", False),
             ("energy", False), ("forward-equivalent", True), ("steps", True), ("energy", True)], prow,
            "profiles-table") + '<p class="muted">Add or change profiles in <code>retroingest.toml</code> '
            '(<code>[profiles.&lt;name&gt;]</code>, docs/METRICS.md); the next report recomputes.</p>')
    out.append('<p class="muted">Time: at a self-selected speed, one minute of backward running is worth about one '
               'minute of easy forward running (±15 %); heart-rate load (TRIMP) is shown per activity where HR '
               'exists.</p></section>')
    return "".join(out)


def _context(d: ReportData) -> str:
    head = ('<section id="context"><h2>Where: track, road or treadmill</h2>'
            '<p class="muted">The seeds recommend a track (lane lines keep you straight) or a treadmill (handrails, '
            'no traffic) for backward running.</p>')
    if not d.by_context:
        return head + '<p class="muted">No backward work yet.</p></section>'
    total = sum(r["backward_time_s"] for r in d.by_context) or 1
    rows = [[escape(r["context"]), escape(dur(r["backward_time_s"])), escape(km(r["backward_distance_m"])),
             escape(pct(r["backward_time_s"] / total)), escape(str(r["n_segments"])), escape(dur(r["longest_bout_s"]))]
            for r in d.by_context]
    chart = svg.share_bar([(r["context"], r["backward_time_s"], f"ctx-{r['context']}") for r in d.by_context],
                          css_id="context-chart")
    return head + chart + _table(
        [("context", False), ("time", True), ("distance", True), ("share", True), ("segments", True),
         ("longest", True)], rows, "context-table") + "</section>"


def _safety(d: ReportData) -> str:
    head = '<section id="safety"><h2>Safety</h2>'
    if not d.road_bouts:
        return head + (f'<p class="note ok" id="safety-note">No continuous backward bouts of '
                       f'{LONG_ROAD_BOUT_S // 60} minutes or more on roads.</p></section>')
    rows = [[escape(str(b["local_date"])), f'<a class="goto" href="#activity-{b["activity_id"]}">'
             f'{b["activity_id"]}</a>', escape(dur(b["duration_s"])), escape(km(b["distance_m"])),
             escape(b["gait"]), escape(num(b["confidence"], 2))] for b in d.road_bouts]
    return head + (f'<p class="note warn" id="safety-note">{len(d.road_bouts)} backward bout(s) of '
                   f'{LONG_ROAD_BOUT_S // 60} minutes or more on roads. Running backward on a road means no lane '
                   'lines, kerbs and traffic behind you, and a sore neck from looking over the shoulder; prefer a '
                   'track or a treadmill, or a partner who watches ahead.</p>') + _table(
        [("date", False), ("activity", False), ("duration", True), ("distance", True), ("gait", False),
         ("confidence", True)], rows, "safety-table") + "</section>"


def _activity_list(d: ReportData) -> str:
    head = '<section id="activities"><h2>Activities with backward work</h2>'
    if not d.activities:
        return head + '<p class="muted">None yet.</p></section>'
    rows = [[escape(str(a["local_date"])), f'<a class="goto" href="#activity-{a["activity_id"]}">{a["activity_id"]}</a>',
             escape(f'{a["sport"] or ""} / {a["sub_sport"] or ""}'), escape(str(a["n_backward_segments"])),
             escape(dur(a["backward_time_s"])), escape(km(a["backward_distance_m"])),
             escape(pct(a["backward_share_of_moving_time"])), escape(km(a["claims_fwd_distance_m"])),
             escape(km(a["evidence_fwd_distance_m"])), escape(num(a["evidence_energy_kcal"], 0, "kcal")),
             escape(num(a["backward_confidence"], 2))] for a in d.activities]
    return head + _table([("date", False), ("activity", False), ("sport", False), ("bouts", True),
                          ("backward", True), ("distance", True), ("share", True), ("claims ×6", True),
                          ("evidence", True), ("energy", True), ("confidence", True)], rows,
                         "activity-table") + "</section>"


def _activity(det: ActivityDetail) -> str:
    s = det.summary
    aid = s["activity_id"]
    title = f'{s["local_date"]} · {s["sport"] or "activity"}{" / " + s["sub_sport"] if s["sub_sport"] else ""}'
    cards = "".join([
        _card(dur(s["duration_s"]), "duration"), _card(km(s["distance_m"]), "distance"),
        _card(dur(s["backward_time_s"]), "backward time"), _card(km(s["backward_distance_m"]), "backward distance"),
        _card(pct(s["backward_share_of_moving_time"]), "of moving time"),
    ])
    chans = [("speed", "m/s", det.speed_mps), ("cadence", "spm", det.cadence_spm),
             ("heart_rate", "bpm", det.heart_rate_bpm)]
    timeline = svg.timeline(det.t_s, chans, det.shaded, css_id=f"timeline-{aid}") if det.t_s else \
        '<p class="muted">No records.</p>'
    route = svg.route(det.lat, det.lon, det.route_classes, css_id=f"route-{aid}")
    seg_rows = [[escape(s2["start_time"].strftime("%H:%M:%S")), escape(dur(s2["duration_s"])),
                 escape(num(s2["distance_m"], 0, "m")), escape(s2["gait"]), escape(s2["direction"] or "–"),
                 escape(num(s2["confidence"], 2)), escape(s2["context"]),
                 escape(num(s2["median_speed_mps"], 2)), escape(num(s2["median_cadence_spm"], 0)),
                 escape(s2["evidence"] or "") + (' <b class="verdict-overstated">long road bout</b>'
                                                  if s2["is_long_road_bout"] else "")]
                for s2 in det.segments]
    segs = _table([("start UTC", False), ("duration", True), ("distance", True), ("gait", False),
                   ("direction", False), ("confidence", True), ("context", False), ("speed m/s", True),
                   ("cadence", True), ("evidence", False)], seg_rows, "segments") if seg_rows else \
        '<p class="muted">Not classified yet: run <code>retroingest classify</code>.</p>'
    c = det.claims
    worth = ""
    if c:
        worth = _table([("", False), ("claims", True), ("evidence", True), ("evidence band", True)], [
            ["forward-equivalent distance", escape(km(c["claims_fwd_distance_m"])), escape(km(c["evidence_fwd_distance_m"])),
             escape(f'{km(c["evidence_fwd_distance_low_m"])} – {km(c["evidence_fwd_distance_high_m"])}')],
            ["forward-equivalent steps", escape(num(c["claims_fwd_steps"])), escape(num(c["evidence_fwd_steps"])),
             escape(f'{num(c["evidence_fwd_steps_low"])} – {num(c["evidence_fwd_steps_high"])}')],
            ["energy", escape(num(c["claims_energy_kcal"], 0, "kcal")), escape(num(c["evidence_energy_kcal"], 0, "kcal")),
             escape(f'{num(c["evidence_energy_kcal_low"], 0)} – {num(c["evidence_energy_kcal_high"], 0)} kcal')],
            ["equivalent forward pace", escape(pace(c["claims_fwd_equivalent_pace_s_per_km"])),
             escape(pace(c["evidence_fwd_equivalent_pace_s_per_km"])), escape(f'backward {pace(c["backward_pace_s_per_km"])}')],
            ["easy forward running time", "–", escape(dur(c["evidence_fwd_time_s"])),
             escape(f'{dur(c["evidence_fwd_time_low_s"])} – {dur(c["evidence_fwd_time_high_s"])}')],
            ["HR load (TRIMP)", "–", escape(num(c["trimp"], 1)),
             escape(f'avg HR {num(c["avg_heart_rate_bpm"], 0)} bpm' if c["avg_heart_rate_bpm"] else "no HR")],
        ], "worth") + (f'<p class="muted">Body mass {num(c["body_mass_kg"], 1)} kg ({escape(c["body_mass_source"])}).</p>')
    legend = ('<p class="legend"><span><i class="sw" style="background:var(--bwrun);opacity:.6"></i>backward run'
              '</span><span><i class="sw" style="background:var(--bwwalk);opacity:.6"></i>backward walk</span>'
              '<span><i class="sw" style="background:var(--fw)"></i>forward</span></p>')
    return (f'<section class="activity" id="activity-{aid}" data-activity-id="{aid}"><h2>Activity {aid}: '
            f'{escape(title)}</h2><div class="cards">{cards}</div><h3>Speed, cadence and heart rate</h3>{timeline}'
            f'{legend}<div class="row"><div><h3>Route</h3>{route}</div><div><h3>What it was worth</h3>'
            f'{worth or "<p class=muted>No backward work in this activity.</p>"}</div></div>'
            f'<h3>Segments</h3>{segs}</section>')


def render(d: ReportData, *, title: str = "retroingest: backward running report", source: str = "",
           note: str = "") -> str:
    """The full HTML document."""
    picker = ""
    if len(d.details) > 1:
        opts = "".join(f'<option value="activity-{x.summary["activity_id"]}">{escape(str(x.summary["local_date"]))} · '
                       f'activity {x.summary["activity_id"]}</option>' for x in d.details)
        picker = (f'<nav class="picker"><label>Show <select id="activity-picker"><option value="all">all '
                  f'{len(d.details)} activities</option>{opts}</select></label></nav>')
    details = "".join(_activity(x) for x in d.details)
    detail_head = '<section id="details-head"><h2>Activity details</h2>' + (
        picker or "") + ("" if d.details else '<p class="muted">No activities to show.</p>') + "</section>"
    overview = "" if d.focus is not None else (
        _summary(d) + _weekly(d) + _claims(d) + _context(d) + _safety(d) + _activity_list(d))
    if d.focus is not None:
        title += f" · activity {d.focus}"
        detail_head = '<p class="muted"><a href="index.html">Back to the full report</a></p>'
    note_html = f'<p class="note warn">{escape(note)}</p>' if note else ""
    generated = d.generated_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><div class="muted">Generated {generated}'
        f'{" from " + escape(source) if source else ""}. Works offline: no network, no map tiles.</div>'
        f'{note_html}</header>'
        f"<main>{overview}{detail_head}{details}"
        '<footer>Sources: ACSM Guidelines metabolic equations; Compendium of Physical Activities (code 17320); '
        'Williford 1998; Wright &amp; Weyand 2001; Rasica 2020; Laufer 2005; Banister TRIMP. Backward walking '
        'cannot be told from a slow forward stroll without an IMU: low confidence is shown, not hidden.</footer>'
        f'</main><div id="tip"></div><script>{JS}</script></body></html>\n'
    )
