"""What machine and software a benchmark ran on: versions, device, git sha, peak rates.

Used by ``sgk info`` and by the provenance block of ``sgk bench --out`` JSON.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from typing import Any

import torch

__all__ = ["collect_environment", "git_sha", "device_properties", "peak_tflops", "triton_version", "sgk_version"]


def sgk_version() -> str:
    """The installed/importable sgk version, or ``"unknown"``."""
    try:
        import sgk

        return str(getattr(sgk, "__version__", "unknown"))
    except Exception:  # noqa: BLE001 - reporting, never failing
        try:
            from importlib.metadata import version

            return version("sgk")
        except Exception:  # noqa: BLE001
            return "unknown"


def triton_version() -> str | None:
    """Triton's version, or None when it is not importable."""
    try:
        import triton

        return str(triton.__version__)
    except Exception:  # noqa: BLE001
        return None


def git_sha(cwd: str | None = None) -> str | None:
    """``git rev-parse HEAD`` of the repository containing ``cwd`` (default: the current
    directory), with ``-dirty`` appended when tracked files are modified; None outside a repo or
    before the first commit. ``$SGK_GIT_SHA``, when set, wins: a benchmark machine's copy of the
    tree may carry no ``.git`` or a stale one (on the H100 machine a ``.git`` of an earlier commit
    travelled along and runs of later code recorded it, marked ``-dirty``)."""
    if os.environ.get("SGK_GIT_SHA"):
        return os.environ["SGK_GIT_SHA"]
    cwd = cwd or os.getcwd()
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("SGK_GIT_SHA") or None
    if not sha:
        return None
    try:
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        dirty = ""
    return sha + ("-dirty" if dirty else "")


def device_properties(device: int | None = None) -> dict[str, Any] | None:
    """Name, compute capability, SM count and memory of a CUDA device; None without CUDA."""
    if not torch.cuda.is_available():
        return None
    idx = torch.cuda.current_device() if device is None else device
    p = torch.cuda.get_device_properties(idx)
    return {
        "name": p.name,
        "compute_capability": f"{p.major}.{p.minor}",
        "sm_count": p.multi_processor_count,
        "memory_gib": round(p.total_memory / 2**30, 1),
        "device_count": torch.cuda.device_count(),
    }


# Dense peak rates in TFLOP/s (no structured sparsity): (fp32 on CUDA cores, tf32, fp16/bf16 tensor cores).
# Matched by substring of the device name, first match wins; unknown devices report no share of peak.
_PEAKS: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("H100 PCIe", (51.2, 378.0, 756.0)),
    ("H100", (66.9, 494.7, 989.4)),
    ("H200", (66.9, 494.7, 989.4)),
    ("H800", (66.9, 494.7, 989.4)),
    ("A100", (19.5, 156.0, 312.0)),
    ("L40S", (91.6, 183.0, 366.0)),
    ("V100", (15.7, 15.7, 125.0)),
)


def peak_tflops(device_name: str | None, precision: str) -> float | None:
    """Dense peak TFLOP/s of a known GPU at ``precision`` (fp32 → CUDA-core FMA, tf32, fp16/bf16 →
    tensor cores); None for unknown devices or the CPU."""
    if not device_name:
        return None
    col = {"fp32": 0, "tf32": 1, "fp16": 2, "bf16": 2}.get(precision)
    if col is None:
        return None
    for key, peaks in _PEAKS:
        if key in device_name:
            return peaks[col]
    return None


def collect_environment(argv: list[str] | None = None) -> dict[str, Any]:
    """Provenance for a benchmark run: versions, device, git sha of the current directory's repo,
    UTC date and the command line."""
    import numpy

    props = device_properties()
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(argv) if argv is not None else list(sys.argv),
        "git_sha": git_sha(),
        "sgk": sgk_version(),
        "torch": torch.__version__,
        "triton": triton_version(),
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "gpu": props["name"] if props else None,
        "device": props,
        "cpu": platform.processor() or platform.machine(),
        "triton_interpret": os.environ.get("TRITON_INTERPRET"),
    }
