"""sgk's direct launcher call (kernels/_launch.py) against Triton's own launch path."""
import pytest
import torch

import sgk
from sgk.kernels import _launch
from sgk.kernels import spmm as kspmm

from _helpers import gen


def test_hooks_active_reads_triton_hook_chains():
    class Chain:
        def __init__(self, calls):
            self.calls = calls

    assert not _launch._hooks_active(None)
    assert not _launch._hooks_active(Chain([]))
    assert _launch._hooks_active(Chain([print]))
    assert _launch._hooks_active(print)  # a plain function hook (older Triton): keep Triton's path


def _outputs(a, b, x, y):
    outs = []
    for cfg in (kspmm.SpmmConfig(4, 32, 64, 4), kspmm.SpmmConfig(4, 8, 32, 1, 1, "1d")):
        for _ in range(2):  # the second launch of a key takes the cached path
            o = kspmm.spmm(a.row_offsets, a.column_indices, a.row_swizzle, a.values, b, config=cfg)
        outs.append(o)
    for _ in range(2):
        s = sgk.sddmm(x, y, a).values
        p = sgk.sparse_softmax(a).values
    return outs + [s, p]


@pytest.mark.gpu
def test_gpu_direct_launch_matches_triton_launch():
    g = gen(7)
    a = sgk.CSRMatrix.random(300, 200, 0.8, generator=g).to("cuda")
    b = torch.randn(200, 72, generator=g).cuda()
    x = torch.randn(300, 40, generator=g).cuda()
    y = torch.randn(200, 40, generator=g).cuda()
    try:
        _launch.set_fast_launch(False)
        slow = _outputs(a, b, x, y)
        _launch.set_fast_launch(True)
        fast = _outputs(a, b, x, y)
        kinds = {type(e).__name__ for e in _launch._ENTRIES.values()}
    finally:
        _launch.set_fast_launch(True)
    for s, f in zip(slow, fast):
        assert torch.equal(s, f)
    assert "tuple" in kinds, f"the direct call served no kernel here: {kinds}"  # no profiler hooked in


@pytest.mark.gpu
def test_gpu_hook_added_later_is_called():
    from triton import knobs

    g = gen(8)
    a = sgk.CSRMatrix.random(64, 64, 0.8, generator=g).to("cuda")
    b = torch.randn(64, 16, generator=g).cuda()
    cfg = kspmm.SpmmConfig(4, 32, 16, 4)
    kspmm.spmm(a.row_offsets, a.column_indices, a.row_swizzle, a.values, b, config=cfg)  # cached
    seen = []

    def hook(meta):
        seen.append(meta)

    chain = knobs.runtime.launch_enter_hook
    if not hasattr(chain, "add"):
        pytest.skip("this Triton keeps launch hooks as plain functions")
    chain.add(hook)
    try:
        c = kspmm.spmm(a.row_offsets, a.column_indices, a.row_swizzle, a.values, b, config=cfg)
    finally:
        chain.remove(hook)
    assert seen, "a launch hook added after the first launch was not called"
    torch.testing.assert_close(c, a.to_dense() @ b)


class _FakeRun:
    """Stands in for Triton's CudaLauncher: records the direct C-launcher calls."""

    global_scratch_size = 0
    profile_scratch_size = 0
    num_ctas = 1
    launch_cooperative_grid = False
    launch_pdl = False

    def __init__(self):
        self.calls = []

        def launch(*args):
            self.calls.append(args)

        self.launch = launch


class _FakeKernel:
    def __init__(self):
        self.run = _FakeRun()
        self.function = 1234
        self.packed_metadata = (4, 1, 0)
        self.runner_calls = []

    def __getitem__(self, grid):
        return lambda *args: self.runner_calls.append((grid, args))


class _FakeJit:
    arg_names = ["x_ptr", "n", "BLOCK"]

    def __init__(self):
        self.kernel = _FakeKernel()
        self.jit_calls = 0

    def __getitem__(self, grid):
        def run(*args, **kwargs):
            self.jit_calls += 1
            return self.kernel

        return run


class _OnDevice(torch.Tensor):
    """A CPU tensor that reports device 0, so launch() takes its CUDA caching path."""

    def get_device(self):
        return 0


def test_direct_launch_path_with_fakes(monkeypatch):
    """First launch through Triton; then the C launcher with the tensor's address; a hook added
    later sends the launch to the compiled kernel's runner."""
    from triton import knobs

    chain = knobs.runtime.launch_enter_hook
    if not hasattr(chain, "calls"):
        pytest.skip("this Triton keeps launch hooks as plain functions")
    monkeypatch.setattr(torch._C, "_cuda_getCurrentRawStream", lambda device: 77, raising=False)
    _launch.set_fast_launch(True)
    try:
        fn = _FakeJit()
        x = torch.zeros(8).as_subclass(_OnDevice)
        args, cexpr = (x, 5), {"BLOCK": 32}
        _launch.launch(fn, (3, 1, 1), args, cexpr, 4, 1)
        assert fn.jit_calls == 1 and not fn.kernel.run.calls
        _launch.launch(fn, (3, 1, 1), args, cexpr, 4, 1)
        assert fn.jit_calls == 1
        (call,) = fn.kernel.run.calls
        assert call[:5] == (3, 1, 1, 77, 1234) and call[-3:] == (x.data_ptr(), 5, 32)

        def hook(meta):
            pass

        chain.add(hook)
        try:
            _launch.launch(fn, (3, 1, 1), args, cexpr, 4, 1)
        finally:
            chain.remove(hook)
        assert len(fn.kernel.run.calls) == 1 and len(fn.kernel.runner_calls) == 1
    finally:
        _launch.set_fast_launch(True)


def test_launch_refuses_constexprs_out_of_declaration_order():
    """The direct call passes the constexprs positionally, so launch() refuses, before the first
    launch, constexprs in another order than the kernel declares them or one left to its default
    (either would have lost the direct launch and every plan's record, silently)."""

    class TwoConstexprs(_FakeJit):
        arg_names = ["x_ptr", "n", "BLOCK", "EVEN"]

    x = torch.zeros(8)
    for constexprs in ({"EVEN": True, "BLOCK": 32}, {"BLOCK": 32}):
        fn = TwoConstexprs()
        with pytest.raises(TypeError, match=r"launch\(\): .*declares the constexprs \['BLOCK', 'EVEN'\]"):
            _launch.launch(fn, (1, 1, 1), (x, 5), constexprs, 4, 1)
        assert fn.jit_calls == 0
    fn = TwoConstexprs()
    _launch.launch(fn, (1, 1, 1), (x, 5), {"BLOCK": 32, "EVEN": True}, 4, 1)
    assert fn.jit_calls == 1


def test_prepared_launch_with_fakes(monkeypatch):
    """launch(prepare=...) returns a record that repeats the launch with new tensors' addresses
    written in; it refuses (and launches nothing) for an address of another residue mod 16, once a
    hook is added, and after the launch path or the tuner setting changed."""
    from triton import knobs

    from sgk.kernels import _tuning

    chain = knobs.runtime.launch_enter_hook
    if not hasattr(chain, "calls"):
        pytest.skip("this Triton keeps launch hooks as plain functions")
    monkeypatch.setattr(torch._C, "_cuda_getCurrentRawStream", lambda device: 77, raising=False)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    _launch.set_fast_launch(True)
    try:
        fn = _FakeJit()
        x = torch.zeros(8).as_subclass(_OnDevice)
        assert _launch.launch(fn, (3, 1, 1), (x, 5), {"BLOCK": 32}, 4, 1) is None  # no prepare asked
        rec = _launch.launch(fn, (3, 1, 1), (x, 5), {"BLOCK": 32}, 4, 1, prepare=(0,))
        assert isinstance(rec, _launch.Prepared) and fn.jit_calls == 1
        runs = fn.kernel.run.calls
        n0 = len(runs)
        y = torch.zeros(8).as_subclass(_OnDevice)
        assert rec.run((y,))
        assert runs[-1][:5] == (3, 1, 1, 77, 1234) and runs[-1][-3:] == (y.data_ptr(), 5, 32) and len(runs) == n0 + 1
        z = torch.zeros(9)[1:].as_subclass(_OnDevice)  # 4 bytes in: another residue mod 16
        assert not rec.run((z,)) and len(runs) == n0 + 1

        def hook(meta):
            pass

        chain.add(hook)
        try:
            assert not rec.run((y,))
        finally:
            chain.remove(hook)
        assert rec.run((y,)) and len(runs) == n0 + 2
        _tuning.set_autotune(_tuning.autotune_enabled())
        assert not rec.run((y,))
        rec = _launch.launch(fn, (3, 1, 1), (x, 5), {"BLOCK": 32}, 4, 1, prepare=(0,))
        assert rec.run((y,))
        _launch.set_fast_launch(True)
        assert not rec.run((y,)) and len(runs) == n0 + 4  # (the launch that recorded counts too)
        # inside a capture nothing is recorded (the launch itself still happens)
        monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
        _launch.launch(fn, (3, 1, 1), (x, 5), {"BLOCK": 32}, 4, 1)
        assert _launch.launch(fn, (3, 1, 1), (x, 5), {"BLOCK": 32}, 4, 1, prepare=(0,)) is None
    finally:
        _launch.set_fast_launch(True)


def test_spmm_plan_falls_back_without_a_record(kernel_device, monkeypatch):
    """SpmmPlan takes kernels.spmm (and records anew) whenever it holds no record (on the CPU
    nothing is recordable) or its record refuses; its result is the full path's. On a GPU a
    recorded plain launch is repeated without kernels.spmm."""
    from sgk.kernels import spmm as kmod

    class Refuses:
        width = 4

        def run(self, tensors):
            return False

    seen = []
    real = kmod.spmm

    def counting(*args, **kwargs):
        seen.append(kwargs.get("record"))
        return real(*args, config=kmod.SpmmConfig(2, 8, 16, 1), **kwargs)

    monkeypatch.setattr(kmod, "spmm", counting)
    g = gen(9)
    a = sgk.CSRMatrix.random(12, 10, 0.5, generator=g).to(kernel_device)
    b = torch.randn(10, 16, generator=g).to(kernel_device)
    t = a.topology
    plan = kmod.SpmmPlan(t.row_offsets, t.column_indices, t.row_swizzle)
    ref = a.to_dense() @ b
    torch.testing.assert_close(plan(a.values, b), ref)
    assert len(seen) == 1 and len(seen[0]) == 2  # the configuration, the launch's record (None on the CPU)
    assert (plan._state is not None) == (kernel_device.type == "cuda")
    plan._state = (Refuses(), torch.are_deterministic_algorithms_enabled(), ((12, 16), b.dtype, b.device),
                   kmod.SpmmConfig(2, 8, 16, 1), None)
    torch.testing.assert_close(plan(a.values, b), ref)
    assert len(seen) == 2
    if kernel_device.type == "cuda":
        b2 = torch.randn(10, 16, generator=g).to(kernel_device)
        torch.testing.assert_close(plan(a.values, b2), a.to_dense() @ b2)
        assert len(seen) == 2  # repeated from the record


def test_spmm_plan_split_record_zeroes_and_casts():
    """A recorded split-K launch is repeated into a zeroed fp32 accumulator, cast to C's dtype
    (C itself for fp32), as the full path does."""
    from sgk.kernels import spmm as kmod

    class Adds:
        def __init__(self):
            self.seen = []

        def run(self, tensors):
            v, b, bias_slot, acc = tensors
            assert acc is bias_slot and acc.dtype == torch.float32 and not acc.any()
            acc += 1.5
            self.seen.append(acc)
            return True

    for dtype in (torch.float32, torch.bfloat16):
        plan = kmod.SpmmPlan(None, None, None)
        rec, cfg = Adds(), kmod.SpmmConfig(2, 8, 16, 1, 1, "1d", 2)
        plan._state = (rec, torch.are_deterministic_algorithms_enabled(), ((3, 4), dtype, torch.device("cpu")), cfg, None)
        c = plan(torch.zeros(5), torch.zeros(6, 4))
        assert c.dtype == dtype and c.shape == (3, 4) and torch.all(c == 1.5)
        assert (c is rec.seen[0]) == (dtype == torch.float32)
        assert kmod.last_config == cfg


def test_spmm_plan_keeps_what_the_full_path_recorded(monkeypatch):
    """The plan's state comes from the full path's record list (configuration, then the launch's
    record, and for a split bitmap launch its buffers' sizes): the next call is served by that
    record (a gather launch's four tensors, an unsplit bitmap launch's six with C in the last four,
    a split one's with C in the bias and C slots and the stream's partial sums and arrival counts,
    of the recorded sizes, in the last two); a record-less result (an empty list, or a configuration
    alone) leaves the plan on the full path."""
    from sgk.kernels import spmm as kmod

    class Serves:
        def __init__(self, width=4):
            self.calls, self.width = 0, width

        def run(self, tensors):
            assert len(tensors) == self.width and all(t is tensors[2] for t in tensors[2:])  # C in every slot after b
            self.calls += 1
            return True

    rec, cfg = Serves(), kmod.SpmmConfig(2, 8, 16, 1)
    full = []

    def fake(*args, record=None, **kwargs):
        full.append(1)
        record.extend(recorded)
        return torch.zeros(3, 4)

    class ServesSplit(Serves):
        def run(self, tensors):
            values, b, bias, c, partials, arrivals = tensors
            assert bias is c and partials.dtype == torch.float32 and arrivals.dtype == torch.int32
            assert partials.numel() >= 640 and arrivals.numel() >= 5 and torch.all(arrivals == 0)
            self.calls += 1
            return True

    monkeypatch.setattr(kmod, "spmm", fake)
    bitmap_rec = Serves(width=6)  # an unsplit bitmap launch: C also in the bias, partials and arrivals slots
    split_rec = ServesSplit(width=6)
    split_cfg = kmod.SpmmConfig(64, 128, 16, 4, 3, "bitmap", 2)
    for rec, recorded, served in ((rec, [cfg, rec], True), (bitmap_rec, [kmod.SpmmConfig(64, 128, 16, 4, 3, "bitmap", 0), bitmap_rec], True),
                                  (split_rec, [split_cfg, split_rec, (640, 5)], True), (rec, [split_cfg], False), (rec, [], False)):
        plan = kmod.SpmmPlan(None, None, None)
        before, runs = len(full), rec.calls
        plan(torch.zeros(5), torch.zeros(6, 4))
        c = plan(torch.zeros(5), torch.zeros(6, 4))
        assert c.shape == (3, 4)
        assert (len(full) - before, rec.calls - runs) == ((1, 1) if served else (2, 0))
