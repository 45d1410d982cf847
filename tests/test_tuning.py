"""The bucket tuner's choice, with do_bench replaced by scripted timings (no GPU needed)."""
from __future__ import annotations

import types

import pytest
import torch
import triton.testing

from sgk.kernels._tuning import BucketTuner

CUDA = types.SimpleNamespace(type="cuda")  # choose() reads only the device's type


@pytest.fixture
def timings(monkeypatch):
    """Scripted do_bench: ``script[cfg]`` is the list of times that candidate returns, in order."""
    script: dict[str, list[float]] = {}
    calls: list[tuple[str, int]] = []
    ran: list[str] = []

    def fake(fn, warmup, rep, return_mode):
        fn()
        cfg = ran[-1]
        calls.append((cfg, rep))
        times = script[cfg]
        if times[0] == "fail":
            raise RuntimeError("out of shared memory")
        return times.pop(0) if len(times) > 1 else times[0]

    monkeypatch.setattr(triton.testing, "do_bench", fake)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    return script, calls, ran


def test_finalists_retimed(timings):
    """The two fastest of the first pass are timed again, longer and interleaved; the faster of that
    decides, so a lucky first timing does not pick the slower candidate; the choice is cached."""
    script, calls, ran = timings
    script.update(a=[3.0], b=[1.0, 2.0], c=[1.5, 1.2], d=["fail"])
    tuner = BucketTuner("t")
    got = tuner.choose("key", ["a", "b", "c", "d"], ran.append, CUDA)
    assert got == "c"  # b was faster once (1.0), slower on the re-timings (2.0 against 1.2)
    assert [c for c, rep in calls if rep > 8] == ["b", "c", "b", "c"]
    n = len(calls)
    assert tuner.choose("key", ["a", "b", "c", "d"], ran.append, CUDA) == "c" and len(calls) == n


def test_single_survivor_and_heuristic(timings):
    """One candidate that runs is kept without re-timing; none that runs keeps the heuristic (the
    first); off the GPU nothing is timed."""
    script, calls, ran = timings
    script.update(a=["fail"], b=[2.0], c=["fail"])
    assert BucketTuner("t").choose("k", ["a", "b"], ran.append, CUDA) == "b"
    assert all(rep == 8 for _, rep in calls)
    assert BucketTuner("t").choose("k", ["a", "c"], ran.append, CUDA) == "a"
    n = len(calls)
    assert BucketTuner("t").choose("k", ["b", "a"], ran.append, torch.device("cpu")) == "b" and len(calls) == n


def test_autotune_off_ignores_choices_timed_before(timings):
    """With tuning switched off the heuristic (the first candidate) is used even for a key timed
    while it was on; switched on again, the timed choice is back."""
    from sgk.kernels import _tuning

    script, calls, ran = timings
    script.update(a=[2.0], b=[1.0])
    tuner = BucketTuner("t")
    assert tuner.choose("k", ["a", "b"], ran.append, CUDA) == "b"
    _tuning.set_autotune(False)
    try:
        assert tuner.choose("k", ["a", "b"], ran.append, CUDA) == "a"
    finally:
        _tuning.set_autotune(True)
    assert tuner.choose("k", ["a", "b"], ran.append, CUDA) == "b"


def test_exact_caches(monkeypatch):
    """Exact-problem caches: kept outside a capture, not inside one; cleared past their limit and
    whenever autotuning is switched (choices made under the other setting must not stay)."""
    from sgk.kernels import _tuning
    from sgk.kernels import spmm as kmod

    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    cache = _tuning.exact_cache()
    _tuning.remember(cache, "a", 1, CUDA)
    assert cache == {"a": 1}
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    _tuning.remember(cache, "b", 2, CUDA)
    assert "b" not in cache
    _tuning.remember(cache, "b", 2, torch.device("cpu"))  # no capture on the CPU
    assert cache["b"] == 2
    monkeypatch.setattr(_tuning, "EXACT_CACHE_LIMIT", 2)
    _tuning.remember(cache, "c", 3, torch.device("cpu"))
    assert cache == {"c": 3}
    kmod._CHOSEN["x"] = "cfg"
    _tuning.set_autotune(False)
    try:
        assert not cache and "x" not in kmod._CHOSEN
    finally:
        _tuning.set_autotune(True)
