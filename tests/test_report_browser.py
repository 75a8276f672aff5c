"""The HTML report in a real headless Chromium (Debian's `chromium`): no console errors, the
expected elements present after the page's JavaScript ran, and a screenshot that is not blank.

Console messages come from Chromium's own log (--enable-logging=stderr --v=0 prints every
console message, error or not, as `INFO:CONSOLE`); the report logs nothing on purpose, so any
console line is a failure. The page's Content-Security-Policy blocks every network load, and a
blocked load is such a console line too, so these tests also prove the report works offline.
The screenshot is decoded by a small PNG reader below (zlib + NumPy; no Pillow needed).

Chromium missing: skipped with a message, but a failure under CI=true (.ci/run installs it).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from retroingest import warehouse
from retroingest.cli import main
from test_metrics import T0, Bout, add_activity, interval_session
from test_views import road_session

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
         "--force-device-scale-factor=0.5"]  # half-size screenshot: quicker to decode, same layout
SMALL = (1200, 1000)  # window for tests that need no full-page pixels
CONSOLE_RE = re.compile(r":CONSOLE[:(]\d+\)?\] (.*)")


@pytest.fixture(scope="module")
def chromium() -> str:
    if not CHROMIUM:
        msg = "chromium not found (apt-get install -y chromium); browser tests skipped"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {msg}")
        pytest.skip(msg)
    return CHROMIUM


# ---- a DOM and a PNG, read without extra dependencies ---------------------------------------

@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    ancestors: tuple[str, ...]   # ids of enclosing elements, outermost first

    def has_class(self, c: str) -> bool:
        return c in self.attrs.get("class", "").split()


class _DomCollector(HTMLParser):
    VOID = {"meta", "link", "br", "img", "input", "hr", "col", "area", "base", "wbr", "source"}

    def __init__(self):
        super().__init__()
        self.elements: list[Element] = []
        self._stack: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.elements.append(Element(tag, a, tuple(i for _, i in self._stack if i)))
        if tag not in self.VOID:
            self._stack.append((tag, a.get("id", "")))

    def handle_startendtag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.elements.append(Element(tag, a, tuple(i for _, i in self._stack if i)))

    def handle_endtag(self, tag):
        for k in range(len(self._stack) - 1, -1, -1):
            if self._stack[k][0] == tag:
                del self._stack[k:]
                break


def decode_png(data: bytes) -> np.ndarray:
    """8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) to an H x W x C uint8 array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
    bpp = 3 if ctype == 2 else 4
    stride = w * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(h, stride + 1)
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(h):
        ftype, line = raw[y, 0], raw[y, 1:]
        if ftype == 0:
            cur = line.copy()
        elif ftype == 1:  # Sub: running sum per channel, modulo 256
            cur = np.cumsum(line.reshape(w, bpp), axis=0, dtype=np.uint8).reshape(stride)
        elif ftype == 2:  # Up
            cur = line + prev
        else:  # Average and Paeth need the reconstructed left byte: byte by byte
            buf, up = bytearray(line.tobytes()), prev.tobytes()
            for i in range(stride):
                a = buf[i - bpp] if i >= bpp else 0
                b = up[i]
                if ftype == 3:
                    buf[i] = (buf[i] + ((a + b) >> 1)) & 0xFF
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    buf[i] = (buf[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
            cur = np.frombuffer(bytes(buf), dtype=np.uint8)
        out[y] = cur
        prev = out[y]
    return out.reshape(h, w, bpp)


@dataclass
class Page:
    elements: list[Element]
    console: list[str]
    pixels: np.ndarray

    def find(self, tag: str | None = None, *, id: str | None = None, cls: str | None = None,
             within: str | None = None) -> list[Element]:
        return [e for e in self.elements
                if (tag is None or e.tag == tag) and (id is None or e.attrs.get("id") == id)
                and (cls is None or e.has_class(cls)) and (within is None or within in e.ancestors)]

    def non_background_share(self) -> float:
        """Share of pixels that differ visibly from the white page background."""
        diff = np.abs(self.pixels[:, :, :3].astype(np.int16) - 255).max(axis=2)
        return float((diff > 24).mean())

    def count_colour(self, rgb: tuple[int, int, int], tol: int = 40) -> int:
        diff = np.abs(self.pixels[:, :, :3].astype(np.int16) - np.array(rgb, dtype=np.int16)).max(axis=2)
        return int((diff <= tol).sum())


def load(chromium: str, html: Path, work: Path, window: tuple[int, int] = (1200, 3000)) -> Page:
    """Open `html` in headless Chromium once: DOM after scripts, console messages, screenshot."""
    profile = work / f"profile-{html.stem}"
    shot = work / f"{html.stem}.png"
    proc = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}",
         f"--screenshot={shot}", "--dump-dom", html.resolve().as_uri()],
        capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    collector = _DomCollector()
    collector.feed(proc.stdout)
    console = [m.group(1) for m in CONSOLE_RE.finditer(proc.stderr)]
    return Page(collector.elements, console, decode_png(shot.read_bytes()))


def write_report(tmp_path: Path, db: Path, *extra: str) -> Path:
    res = CliRunner().invoke(main, ["report", "-w", str(db), "--out", str(tmp_path / "out"), *extra])
    assert res.exit_code == 0, res.output
    return Path(res.output.split("report: ", 1)[1].split()[0])


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray ./retroingest.toml changes the profiles
    monkeypatch.delenv("RETROINGEST_CONFIG", raising=False)
    return tmp_path


def populated_warehouse(path: Path) -> Path:
    con = warehouse.connect(path)
    add_activity(con, 1, T0, interval_session(), body_mass_kg=80.0)
    add_activity(con, 2, T0 + dt.timedelta(days=15), road_session(), sub_sport="road")
    add_activity(con, 3, T0 + dt.timedelta(days=16), [Bout(1800, 3.0, 166, context="road")], sub_sport="road")
    add_activity(con, 4, T0 + dt.timedelta(days=20),
                 [Bout(300, 1.3, 110, gait="walk", context="treadmill"),
                  Bout(600, 0.9, 100, gait="walk", direction="backward", context="treadmill", confidence=0.55)],
                 sport="walking", sub_sport="treadmill", gps=False)
    con.close()  # the report computes the metrics itself
    return path


# ---- tests ---------------------------------------------------------------------------------

def test_report_renders_offline_with_charts_and_no_console_errors(chromium, in_tmp):
    db = populated_warehouse(in_tmp / "retro.duckdb")
    page = load(chromium, write_report(in_tmp, db), in_tmp)
    assert page.console == []
    assert page.find("body")[0].attrs.get("data-ready") == "1", "the page script did not run to the end"
    for section in ("summary", "weekly", "claims", "context", "safety", "activities"):
        assert page.find("section", id=section), section
    assert len(page.find("rect", cls="bar", within="weekly-chart")) == 3          # 3 weeks, one empty
    assert len(page.find("rect", cls="claims", within="claims-chart")) == 3       # distance, steps, energy
    assert len(page.find("line", cls="band", within="claims-chart")) == 3
    assert page.find(cls="warn", id="safety-note"), "long road bouts must raise the safety note"
    assert len(page.find("section", cls="activity")) == 3                         # activities with backward work
    assert len(page.find("rect", cls="shade-run", within="timeline-2")) == 2
    assert len(page.find("rect", cls="shade-walk", within="timeline-2")) == 1
    assert len(page.find("path", cls="series", within="timeline-2")) == 3          # speed, cadence, HR
    route = {c for e in page.find("polyline", within="route-2") for c in e.attrs["class"].split()}
    assert {"fw", "bw-run", "bw-walk"} <= route
    assert len(page.find("tr", within="activity-2")) >= 5
    assert page.find("option", id=None) and page.find("select", id="activity-picker")
    # the screenshot shows a drawn page, with the backward-run orange of the bars and shading
    assert page.non_background_share() > 0.05
    assert page.count_colour((222, 99, 52)) > 2000


def test_report_of_an_empty_warehouse(chromium, in_tmp):
    page = load(chromium, write_report(in_tmp, in_tmp / "empty.duckdb"), in_tmp, SMALL)
    assert page.console == []
    assert page.find("body")[0].attrs.get("data-ready") == "1"
    assert page.find("section", id="summary") and not page.find("section", cls="activity")
    assert page.non_background_share() > 0.005  # header and notes are drawn


def test_report_of_a_forward_only_warehouse(chromium, in_tmp):
    con = warehouse.connect(in_tmp / "fwd.duckdb")
    add_activity(con, 7, T0, [Bout(1500, 3.0, 166, context="road")], sub_sport="road")
    con.close()
    page = load(chromium, write_report(in_tmp, in_tmp / "fwd.duckdb"), in_tmp, SMALL)
    assert page.console == []
    assert page.find(cls="ok", id="safety-note")
    assert len(page.find("section", cls="activity")) == 1  # the latest activity is still drawn
    assert not page.find("rect", cls="shade-run") and not page.find("rect", cls="bar", within="claims-chart")
    assert {e.attrs["class"] for e in page.find("polyline", within="route-7")} == {"fw"}


def test_single_activity_report(chromium, in_tmp):
    db = populated_warehouse(in_tmp / "retro.duckdb")
    html = write_report(in_tmp, db, "--activity", "4")
    assert html.name == "activity-4.html"
    page = load(chromium, html, in_tmp, SMALL)
    assert page.console == []
    assert [e.attrs["id"] for e in page.find("section", cls="activity")] == ["activity-4"]
    assert page.find("svg", id="route-4") and not page.find("polyline", within="route-4")  # treadmill: no GPS
    assert len(page.find("rect", cls="shade-walk", within="timeline-4")) == 1


def test_the_checks_catch_script_errors_network_loads_and_blank_pages(chromium, in_tmp):
    """The detectors above must be able to fail: feed them a broken copy of the report."""
    html = write_report(in_tmp, in_tmp / "empty.duckdb").read_text()
    broken = in_tmp / "broken.html"
    broken.write_text(html.replace("</body>", '<img src="http://example.invalid/tile.png">'
                                              "<script>notDefined();</script></body>"))
    page = load(chromium, broken, in_tmp, SMALL)
    assert any("Content Security Policy" in m for m in page.console), page.console
    assert any("notDefined" in m for m in page.console), page.console
    blank = in_tmp / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    assert load(chromium, blank, in_tmp, SMALL).non_background_share() < 0.001


def test_report_of_simulated_files_through_the_real_pipeline(chromium, in_tmp):
    """simulate -> ingest (classify, metrics) -> report: real positions, real segments."""
    from retroingest.ingest import ingest
    from retroingest.simulate import simulate

    files = simulate(in_tmp / "sim", n=4, seed=42)
    db = in_tmp / "sim.duckdb"
    ingest([in_tmp / "sim"], db, workers=1)
    page = load(chromium, write_report(in_tmp, db), in_tmp, SMALL)
    assert page.console == []
    con = warehouse.connect(db, read_only=True)
    n_found = con.execute("SELECT count(*) FROM v_activity_backward WHERE n_backward_segments > 0").fetchone()[0]
    con.close()
    assert 1 <= n_found <= sum(f.backward_s > 0 for f in files)
    assert len(page.find("section", cls="activity")) == n_found
    assert page.find("rect", cls="shade-run") or page.find("rect", cls="shade-walk")
    if any(f.backward_s > 0 and f.has_gps for f in files):  # backward parts coloured on a real route
        assert page.find("polyline", cls="bw-run") or page.find("polyline", cls="bw-walk")
    assert len(page.find("rect", cls="claims", within="claims-chart")) == 3
