"""Anchor timings measured elsewhere (cuBLAS, cuSPARSE, Sputnik on an H100) and the estimated
speedup of sgk over Sputnik derived from them.

Sputnik cannot run here, so its speed is carried over through cuSPARSE, measured both in the
anchor run and in ours (``../shared/anchors/README.md``)::

    speedup over Sputnik ≈ (cusparse_ours / sgk_ours) / (cusparse32_anchor / sputnik_anchor)

Rows are matched by the DLMC path suffix ``{model}/{method}/{sparsity}/{layer}.smtx`` and n.
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Anchors", "find_anchors", "load_anchors", "anchor_key", "speedup_over_sputnik"]


def _norm_level(level: str) -> str:
    try:
        return repr(float(level))
    except ValueError:
        return level


def anchor_key(path: str, n: int) -> tuple[str, str, str, str, int]:
    """``(model, method, level, layer, n)`` from the last four components of a DLMC path
    (``/`` or the OS separator), with the sparsity level normalised (``"0.80"`` == ``"0.8"``)."""
    parts = [p for p in path.replace(os.sep, "/").split("/") if p]
    if len(parts) < 4:
        raise ValueError(f"anchor path {path!r} is not of the form {{model}}/{{method}}/{{sparsity}}/{{layer}}.smtx")
    model, method, level, name = parts[-4:]
    stem = name[:-5] if name.endswith(".smtx") else name
    return model, method, _norm_level(level), stem, int(n)


def speedup_over_sputnik(
    cusparse_ours: float, sgk_ours: float, cusparse_anchor: float, sputnik_anchor: float
) -> float:
    """Estimated speedup of sgk over Sputnik on one matrix (all times in the same unit per run):
    ``(cusparse_ours / sgk_ours) / (cusparse_anchor / sputnik_anchor)``."""
    return (cusparse_ours / sgk_ours) / (cusparse_anchor / sputnik_anchor)


@dataclass
class Anchors:
    """Anchor rows indexed by :func:`anchor_key`."""

    path: str
    rows: dict[tuple[str, str, str, str, int], dict[str, Any]] = field(default_factory=dict)

    def lookup(self, key: str, n: int) -> dict[str, Any] | None:
        """The row for DLMC path suffix ``key`` at width ``n``, or None."""
        try:
            return self.rows.get(anchor_key(key, n))
        except ValueError:
            return None

    def columns(self) -> set[str]:
        return {c for row in self.rows.values() for c in row}

    def __len__(self) -> int:
        return len(self.rows)


def load_anchors(path: str | os.PathLike) -> Anchors:
    """Read an anchors JSON file: a list of rows with ``path``, ``n`` and timing columns (ms)."""
    with open(path) as f:
        data = json.load(f)
    rows = data.get("rows", data.get("cases")) if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of rows (or an object with 'rows')")
    out = Anchors(str(path))
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "path" not in row or "n" not in row:
            raise ValueError(f"{path}: row {i} lacks 'path' or 'n'")
        out.rows[anchor_key(row["path"], row["n"])] = row
    return out


def find_anchors(search_dirs: tuple[str, ...] = ("../shared/anchors", ".dlmc")) -> str | None:
    """The default anchors file: the newest ``dlmc_h100_*.json`` in ``../shared/anchors`` (by the
    date in its name), else the newest ``anchors*.json`` in ``./.dlmc``; None when neither exists."""
    patterns = {"../shared/anchors": "dlmc_h100_*.json", ".dlmc": "anchors*.json"}
    for d in search_dirs:
        pattern = patterns.get(d, "*.json")
        found = sorted(glob.glob(str(Path(d) / pattern)))
        if found:
            return found[-1]
    return None
