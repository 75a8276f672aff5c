"""Viterbi decoding for many sequences at once.

``viterbi`` is what the classifier uses: exact decoding of every activity in one compiled loop
(``kernels.viterbi``, about 0.02 s per million records). ``viterbi_batch`` is the NumPy
formulation it replaced, kept as an independent reference for the tests. Its time loop runs once per *step*, not per record: every activity is cut into chunks of equal
length that overlap their neighbours by ``overlap`` records on each side, all chunks are decoded
together as one (chunks × states) array per step, and each chunk keeps only the path of its core.
With strong, sticky transitions the Viterbi path of a chunk agrees with the full-sequence path
well inside the overlap (checked by a test against unchunked decoding).
"""

from __future__ import annotations

import math

import numpy as np

from retroingest.classify import kernels
from retroingest.classify.model import BR, BW, FR, FW, S

# mean dwell time (s) per state, and where a state goes when it is left
DWELL_S = {S: 30.0, FW: 90.0, BW: 60.0, FR: 300.0, BR: 120.0}
DEST = {
    S: {FW: 0.45, FR: 0.45, BW: 0.05, BR: 0.05},
    FW: {S: 0.30, FR: 0.55, BW: 0.10, BR: 0.05},
    BW: {FW: 0.60, S: 0.20, FR: 0.10, BR: 0.10},
    FR: {S: 0.25, FW: 0.35, BR: 0.30, BW: 0.10},
    BR: {FR: 0.50, FW: 0.30, S: 0.20, BW: 0.00},
}


def log_transitions(switch_cost: float = 0.0) -> np.ndarray:
    """(5, 5) log transition matrix for one record at 1 Hz; ``switch_cost`` adds stickiness (nats)."""
    A = np.full((5, 5), -np.inf)
    for i, dw in DWELL_S.items():
        leave = 1.0 / dw
        A[i, i] = math.log(1.0 - leave)
        for j, q in DEST[i].items():
            if q > 0:
                A[i, j] = math.log(leave * q) - switch_cost
    return A


def viterbi(loglik: np.ndarray, starts: np.ndarray, ends: np.ndarray, logA: np.ndarray) -> np.ndarray:
    """Most likely state per record for the sequences [starts[k], ends[k]) of ``loglik`` (N, K), exact."""
    ll = loglik if loglik.dtype == np.float32 else np.asarray(loglik, np.float64)
    return kernels.viterbi(np.ascontiguousarray(ll), np.asarray(starts, np.int64),
                           np.asarray(ends, np.int64), np.ascontiguousarray(logA, dtype=np.float64))


def viterbi_batch(loglik: np.ndarray, starts: np.ndarray, ends: np.ndarray, logA: np.ndarray,
                  chunk: int | None = None, overlap: int = 400) -> np.ndarray:
    """Most likely state per record for the sequences [starts[k], ends[k]) of ``loglik`` (N, K)."""
    n, k = loglik.shape
    path = np.zeros(n, np.int8)
    if n == 0:
        return path
    if chunk is None:
        # balance the per-step overhead against the overlap work (see module docstring)
        chunk = int(np.clip(8.0 * math.sqrt(n), 1000, 20000))
    # chunk cores and their padded windows
    core_lo, core_hi, win_lo, win_hi = [], [], [], []
    for a, b in zip(starts.tolist(), ends.tolist()):
        for lo in range(a, b, chunk):
            hi = min(lo + chunk, b)
            core_lo.append(lo); core_hi.append(hi)
            win_lo.append(max(a, lo - overlap)); win_hi.append(min(b, hi + overlap))
    core_lo, core_hi = np.array(core_lo), np.array(core_hi)
    win_lo, win_hi = np.array(win_lo), np.array(win_hi)
    lens = win_hi - win_lo
    m = lens.size
    steps = int(lens.max())
    # (steps, K, m) emissions, states first so that every step works on contiguous rows of
    # length m; padded with zeros past each window's end
    idx = win_lo[None, :] + np.arange(steps)[:, None]
    valid = idx < win_hi[None, :]
    E = loglik.T[:, np.minimum(idx, n - 1)]          # (K, steps, m)
    E = np.ascontiguousarray(E.transpose(1, 0, 2))   # (steps, K, m)
    E *= valid[:, None, :]
    # forward pass: only the running maxima are kept; the back-pointers are recomputed along
    # the chosen path during backtracking, one (states x chunks) argmax per step
    hist = np.empty((steps, k, m))
    hist[0] = E[0]
    A3 = logA[:, :, None]
    buf = np.empty((k, k, m))
    delta = hist[0]
    for t in range(1, steps):
        np.add(delta[:, None, :], A3, out=buf)
        delta = hist[t]
        np.max(buf, axis=0, out=delta)
        delta += E[t]
    last = lens - 1
    rows = np.arange(m)
    s = hist[last, :, rows].argmax(axis=1)
    out = np.empty((steps, m), np.int8)
    for t in range(steps - 1, -1, -1):
        out[t] = s
        if t > 0:
            prev = (hist[t - 1] + logA[:, s]).argmax(axis=0)
            s = np.where(t <= last, prev, s)
    # keep each chunk's core
    for j in range(m):
        off = core_lo[j] - win_lo[j]
        path[core_lo[j]:core_hi[j]] = out[off:off + core_hi[j] - core_lo[j], j]
    return path
