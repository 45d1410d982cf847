"""Compile every Triton kernel variant for sm_90 (H100) without a GPU.

Run as a script (``python tests/sm90_compile.py``), in a process where TRITON_INTERPRET is unset:
the interpreter replaces kernels by Python functions that cannot be compiled. Prints one line per
variant and exits non-zero if any fails. tests/test_compile_sm90.py runs it in a subprocess.
"""
from __future__ import annotations

import os
import sys
import time

os.environ.pop("TRITON_INTERPRET", None)

import inspect  # noqa: E402
import itertools  # noqa: E402
import re  # noqa: E402

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from sgk.kernels import bsr as bsr_mod  # noqa: E402
from sgk.kernels import sddmm as sddmm_mod  # noqa: E402
from sgk.kernels import softmax as softmax_mod  # noqa: E402
from sgk.kernels import spmm as spmm_mod  # noqa: E402

TARGET = GPUTarget("cuda", 90, 32)
H100_SMEM_PER_BLOCK = 232448  # bytes of shared memory one block may use on sm_90 (227 KB)
PTR = {"fp32": "*fp32", "fp16": "*fp16", "bf16": "*bf16"}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _compile(fn, types: dict[str, str], constexprs: dict[str, object], num_warps: int = 4, num_stages: int = 1,
             divisible: tuple[str, ...] = ()):
    """Compile for sm_90. ``divisible``: arguments specialized as multiples of 16 (pointers 16-byte
    aligned), as Triton specializes them at run time when they are."""
    # constexpr parameters with a default that the entry leaves out take the default (a flag
    # added to a kernel need not be added to every entry)
    defaults = {q.name: q.default for q in fn.params if q.is_constexpr and q.default is not inspect.Parameter.empty}
    constexprs = {**{k: v for k, v in defaults.items() if k not in types}, **constexprs}
    signature = {}
    for name in fn.arg_names:
        signature[name] = "constexpr" if name in constexprs else types[name]
    attrs = {(fn.arg_names.index(a),): [["tt.divisibility", 16]] for a in divisible}
    src = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    return triton.compile(src, target=TARGET, options={"num_warps": num_warps, "num_stages": num_stages})


def vector_checks():
    """Gathers that must compile to 16-byte loads (ld.global.v4) when the operands allow it: rows
    of B in SpMM and rows of Y in SDDMM, contiguous (unit stride, a constant Triton specializes),
    16-byte aligned, with strides that are multiples of 16 (an unbatched operand's batch stride
    is 0). A lost vectorization costs up to 4x in load instructions on the gather-bound paths."""
    spmm_types = {
        "row_bounds_ptr": "*i32", "column_indices_ptr": "*i32", "row_swizzle_ptr": "*i32", "m": "i32", "n": "i32",
        "stride_vb": "i64", "stride_bb": "i64", "stride_bk": "i32", "stride_biasb": "i64", "stride_cb": "i64", "stride_cm": "i32",
    }
    spmm_div = ("row_bounds_ptr", "column_indices_ptr", "row_swizzle_ptr", "values_ptr", "b_ptr", "bias_ptr", "c_ptr",
                "n", "stride_vb", "stride_bb", "stride_bk", "stride_biasb", "stride_cb", "stride_cm")
    unit = {"stride_bn": 1, "stride_cn": 1, "HAS_BIAS": False, "RELU": False}
    sddmm_types = {"row_offsets_ptr": "*i32", "column_indices_ptr": "*i32", "row_swizzle_ptr": "*i32", "d": "i32",
                   "stride_xb": "i64", "stride_xm": "i32", "stride_yb": "i64", "stride_yk": "i32", "stride_ob": "i64"}
    sddmm_div = ("row_offsets_ptr", "column_indices_ptr", "row_swizzle_ptr", "x_ptr", "y_ptr", "out_ptr", "d",
                 "stride_xb", "stride_xm", "stride_yb", "stride_yk", "stride_ob")
    for dt in ("fp32", "bf16"):
        ptrs = {k: PTR[dt] for k in ("values_ptr", "b_ptr", "bias_ptr", "c_ptr")}
        yield (f"spmm tile {dt}", spmm_mod._spmm_kernel, {**spmm_types, **ptrs},
               {**unit, "ROWS": 8, "BLOCK_K": 8, "BLOCK_N": 32, "PREFETCH": True}, 2, 3, spmm_div)
        yield (f"spmm 1d {dt}", spmm_mod._spmm_1d_kernel, {**spmm_types, **ptrs},
               {**unit, "ROWS": 4, "BLOCK_K": 4, "BLOCK_N": 128, "EVEN_N": True, "SPLIT_K": 1, "CHUNK_MAJOR": False}, 2, 1, spmm_div)
        yield (f"spmm 1d prefetch {dt}", spmm_mod._spmm_1d_kernel, {**spmm_types, **ptrs},
               {**unit, "ROWS": 4, "BLOCK_K": 4, "BLOCK_N": 128, "EVEN_N": True, "SPLIT_K": 1, "CHUNK_MAJOR": False,
                "PREFETCH": True}, 2, 1, spmm_div)
        if dt == "bf16":  # the flat tile's point: 16-byte gathers and no shared-memory conversion (bar.sync) in its loop
            for pack in (1, 2, 4):
                yield (f"spmm flat bf16 n=16 pack={pack} (no bar.sync)", spmm_mod._spmm_flat_kernel,
                       {**spmm_types, **ptrs, "column_indices_ptr": "*i16", "nnz": "i32"},
                       {**unit, "ROWS": 4, "BLOCK_K": 32 // pack, "BLOCK_N": 16, "EVEN_N": True, "WIDE": False, "PACK": pack,
                        "SPLIT_K": 1, "CHUNK_MAJOR": False}, 1, 1, spmm_div + ("stride_vb", "stride_bb", "stride_biasb", "stride_cb"))
        yield (f"sddmm whole-row {dt}", sddmm_mod._sddmm_kernel, {**sddmm_types, **{k: PTR[dt] for k in ("x_ptr", "y_ptr", "out_ptr")}},
               {"stride_xd": 1, "stride_yd": 1, "BLOCK_NZ": 32, "BLOCK_D": 128, "SINGLE_D": True, "EVEN_D": True}, 1, 1, sddmm_div)


def variants():
    for dt in ("fp32", "fp16", "bf16"):
        for (has_bias, relu), n in itertools.product(((False, False), (True, True)), (1, 16, 256, 4096)):
            cfg = spmm_mod.default_config(4096, n, 4096 * 100, DTYPES[dt])
            types = {
                "row_bounds_ptr": "*i32", "column_indices_ptr": "*i32", "row_swizzle_ptr": "*i32",
                "values_ptr": PTR[dt], "b_ptr": PTR[dt], "bias_ptr": PTR[dt], "c_ptr": PTR[dt],
                "m": "i32", "n": "i32",
                "stride_vb": "i64", "stride_bb": "i64", "stride_bk": "i64", "stride_bn": "i64",
                "stride_biasb": "i64", "stride_cb": "i64", "stride_cm": "i64", "stride_cn": "i64",
            }
            if n == 4096 and cfg.kind != "1d":  # a 1d-kernel configuration too, partial column tile with bias
                cfg_1d = spmm_mod.SpmmConfig(4, 4, 128, 2, 1, "1d")
                yield (f"spmm-1d {dt} n={n} bias={has_bias} relu={relu}", spmm_mod._spmm_1d_kernel, types,
                       {"ROWS": cfg_1d.rows, "BLOCK_K": cfg_1d.block_k, "BLOCK_N": cfg_1d.block_n, "EVEN_N": not has_bias,
                        "HAS_BIAS": has_bias, "RELU": relu, "SPLIT_K": 1, "CHUNK_MAJOR": False}, cfg_1d.num_warps, cfg_1d.num_stages)
            if n == 16 and has_bias:  # compact (16-bit) column indices, both kernel families
                yield (f"spmm-compact {dt} n={n}", spmm_mod._spmm_kernel, {**types, "column_indices_ptr": "*i16"},
                       {"ROWS": 4, "BLOCK_K": 32, "BLOCK_N": 16, "HAS_BIAS": True, "RELU": True, "PREFETCH": True}, 4, 3)
                yield (f"spmm-1d-compact {dt} n={n}", spmm_mod._spmm_1d_kernel, {**types, "column_indices_ptr": "*i16"},
                       {"ROWS": 1, "BLOCK_K": 8, "BLOCK_N": 64, "EVEN_N": False, "HAS_BIAS": True, "RELU": True,
                        "SPLIT_K": 1, "CHUNK_MAJOR": False}, 1, 1)
            if n in (1, 16, 64) and dt != "fp32":  # flat tiles (decode shapes), 16-bit indices, int32 and int64 offsets
                flat_types = {**types, "column_indices_ptr": "*i16", "nnz": "i32"}
                for i, fc in enumerate(spmm_mod._flat(n, True, packed=True)):
                    yield (f"spmm-flat {dt} n={n} {fc.rows}x{fc.block_k}x{fc.block_n} w{fc.num_warps} pack={fc.pack} "
                           f"bias={has_bias}", spmm_mod._spmm_flat_kernel, flat_types,
                           {"ROWS": fc.rows, "BLOCK_K": fc.block_k, "BLOCK_N": fc.block_n, "EVEN_N": not has_bias,
                            "WIDE": i % 3 == 1, "PACK": fc.pack, "HAS_BIAS": has_bias, "RELU": relu, "SPLIT_K": 1, "CHUNK_MAJOR": False},
                           fc.num_warps, 1)
                if has_bias:
                    for pack, major in itertools.product((1, 2, 4), (False, True)):
                        yield (f"spmm-flat-splitk {dt} n={n} pack={pack} chunk_major={major}", spmm_mod._spmm_flat_kernel,
                               {**flat_types, "c_ptr": "*fp32"},
                               {"ROWS": 2, "BLOCK_K": 32, "BLOCK_N": max(8, n), "EVEN_N": True, "WIDE": False, "PACK": pack,
                                "HAS_BIAS": False, "RELU": False, "SPLIT_K": 4, "CHUNK_MAJOR": major}, 1, 1)
            if n == 16 and not has_bias:  # split-K: partial sums added atomically into an fp32 C
                for major in (False, True):
                    yield (f"spmm-1d-splitk {dt} n={n} chunk_major={major}", spmm_mod._spmm_1d_kernel,
                           {**types, "c_ptr": "*fp32"},
                           {"ROWS": 4, "BLOCK_K": 8, "BLOCK_N": 16, "EVEN_N": True, "HAS_BIAS": False, "RELU": False,
                            "SPLIT_K": 4, "CHUNK_MAJOR": major}, 1, 1)
            if cfg.kind == "1d":
                yield (f"spmm-1d {dt} n={n} bias={has_bias} relu={relu}", spmm_mod._spmm_1d_kernel, types,
                       {"ROWS": cfg.rows, "BLOCK_K": cfg.block_k, "BLOCK_N": cfg.block_n, "EVEN_N": True,
                        "HAS_BIAS": has_bias, "RELU": relu, "SPLIT_K": 1, "CHUNK_MAJOR": False}, cfg.num_warps, cfg.num_stages)
            else:
                yield (f"spmm {dt} n={n} bias={has_bias} relu={relu}", spmm_mod._spmm_kernel, types,
                       {"ROWS": cfg.rows, "BLOCK_K": cfg.block_k, "BLOCK_N": cfg.block_n,
                        "HAS_BIAS": has_bias, "RELU": relu, "PREFETCH": cfg.prefetch}, cfg.num_warps, cfg.num_stages)
        # the bitmap (dense-tile) kernel: every candidate, split or not, partial N tile (fp32: three TF32 products)
        types = {
            "bitmap_ptr": "*i32", "word_offsets_ptr": "*i32", "values_ptr": PTR[dt], "b_ptr": PTR[dt],
            "bias_ptr": PTR[dt], "c_ptr": PTR[dt], "partials_ptr": "*fp32", "arrivals_ptr": "*i32",
            "m": "i32", "n": "i32", "k": "i32", "kw": "i32", "k_tiles": "i32", "stride_vb": "i64", "stride_bb": "i64", "stride_bk": "i64", "stride_bn": "i64",
            "stride_biasb": "i64", "stride_cb": "i64", "stride_cm": "i64", "stride_cn": "i64",
        }
        for n in ((1, 16, 64, 200, 2048) if dt != "fp32" else (24, 200, 2048)):
            for i, cfg in enumerate(spmm_mod.bitmap_candidates(n, DTYPES[dt])):
                split = i % 2 == 1
                yield (f"spmm-bitmap {dt} n={n} {cfg.rows}x{cfg.block_k}x{cfg.block_n} w{cfg.num_warps} "
                       f"s{cfg.num_stages} split={split} coalesce={cfg.coalesce} prefetch={cfg.prefetch}",
                       spmm_mod._spmm_bitmap_kernel, types,
                       {"BLOCK_M": cfg.rows, "BLOCK_K": cfg.block_k, "BLOCK_N": cfg.block_n, "EVEN_K": True,
                        "EVEN_N": n % cfg.block_n == 0, "HAS_BIAS": True, "RELU": split, "SPLIT": split,
                        "HW_POPC": True, "COALESCE": cfg.coalesce,
                        "INPUT_PRECISION": "tf32x3" if dt == "fp32" else "ieee", "PREFETCH": cfg.prefetch},
                       cfg.num_warps, cfg.num_stages)
        # the densify form's decode kernel (fp32: split into TF32 heads and tails), and fp32's product
        yield (f"spmm-densify decode {dt}", spmm_mod._bitmap_densify_kernel,
               {"bitmap_ptr": "*i32", "word_offsets_ptr": "*i32", "values_ptr": PTR[dt], "out_ptr": PTR[dt],
                "m": "i32", "k": "i32", "kw": "i32", "stride_vb": "i64", "stride_ob": "i64", "stride_om": "i64",
                "lo_offset": "i64"},
               {"BLOCK_M": spmm_mod.DENSIFY.rows, "BLOCK_K": spmm_mod.DENSIFY.block_k, "HW_POPC": True,
                "SPLIT": dt == "fp32"},
               spmm_mod.DENSIFY.num_warps, 1)
        if dt == "fp32":
            for (bm, bn, bk, warps, stages), (bias, relu) in ((spmm_mod.DENSIFY_X3_TILE, (False, False)),
                                                              (spmm_mod.DENSIFY_X3_TILE, (True, True)),
                                                              (spmm_mod.DENSIFY_X3_SMALL_TILE, (True, False))):
                yield (f"spmm-densify x3 product {bm}x{bn} bias={bias} relu={relu}", spmm_mod._densify_x3_kernel,
                       {"a_ptr": "*fp32", "b_ptr": "*fp32", "bias_ptr": "*fp32", "c_ptr": "*fp32", "m": "i32", "n": "i32",
                        "k": "i32", "lo_offset": "i64", "stride_ab": "i64", "stride_bb": "i64", "stride_bk": "i64",
                        "stride_bn": "i64", "stride_biasb": "i64", "stride_cb": "i64", "stride_cm": "i64"},
                       {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "HAS_BIAS": bias, "RELU": relu,
                        "INPUT_PRECISION": "tf32"}, warps, stages)
        for d, block_d in ((64, None), (64, 64), (80, 128), (2048, None), (2000, 128)):
            cfg = sddmm_mod.default_config(d, 100.0, DTYPES[dt])
            block_d = block_d or cfg.block_d or 1 << (d - 1).bit_length()
            types = {
                "row_offsets_ptr": "*i32", "column_indices_ptr": "*i32", "row_swizzle_ptr": "*i32",
                "x_ptr": PTR[dt], "y_ptr": PTR[dt], "out_ptr": PTR[dt], "d": "i32",
                "stride_xb": "i64", "stride_xm": "i64", "stride_xd": "i64",
                "stride_yb": "i64", "stride_yk": "i64", "stride_yd": "i64", "stride_ob": "i64",
            }
            yield (f"sddmm {dt} d={d} block_d={block_d}", sddmm_mod._sddmm_kernel, types,
                   {"BLOCK_NZ": cfg.block_nz, "BLOCK_D": block_d, "SINGLE_D": block_d >= d, "EVEN_D": d % block_d == 0},
                   cfg.num_warps, cfg.num_stages)
        types = {"row_offsets_ptr": "*i32", "column_indices_ptr": "*i32", "row_swizzle_ptr": "*i32",
                 "x_ptr": PTR[dt], "y_ptr": PTR[dt], "stride_xb": "i64", "stride_yb": "i64", "scale": "fp32", "m": "i32"}
        for single, causal in itertools.product((True, False), (False, True)):
            for rows in ((1, 4) if single else (1,)):
                yield (f"softmax {dt} single={single} causal={causal} rows={rows}", softmax_mod._softmax_kernel, types,
                       {"BLOCK": 1024, "SINGLE": single, "CAUSAL": causal, "ROWS": rows}, 4, 1)
        precision = "tf32" if dt == "fp32" else "ieee"
        # Block-sparse: every candidate of the large blocks (whose pipelines come closest to the
        # shared-memory limit, checked in main), the first candidate of the small ones.
        spmm_types = {
            "row_offsets_ptr": "*i32", "column_indices_ptr": "*i32", "row_swizzle_ptr": "*i32", "block_perm_ptr": "*i32",
            "values_ptr": PTR[dt], "b_ptr": PTR[dt], "c_ptr": PTR[dt], "n": "i32",
            "stride_vb": "i64", "stride_vblk": "i64", "stride_vr": "i64", "stride_vc": "i64",
            "stride_bb": "i64", "stride_bk": "i64", "stride_bn": "i64", "stride_cb": "i64", "stride_cm": "i64", "stride_cn": "i64",
        }
        sddmm_types = {"row_indices_ptr": "*i32", "column_indices_ptr": "*i32", "x_ptr": PTR[dt], "y_ptr": PTR[dt],
                       "out_ptr": PTR[dt], "d": "i32", "stride_xb": "i64", "stride_xm": "i64", "stride_xd": "i64",
                       "stride_yb": "i64", "stride_yk": "i64", "stride_yd": "i64", "stride_ob": "i64"}
        for bs in (16, 64, 128):
            spmm_cfgs = bsr_mod.spmm_candidates(bs, 4096, DTYPES[dt])
            sddmm_cfgs = bsr_mod.sddmm_candidates(bs, 4096, DTYPES[dt])
            if bs == 16:
                spmm_cfgs, sddmm_cfgs = spmm_cfgs[:1], sddmm_cfgs[:1]
            for i, cfg in enumerate(spmm_cfgs):
                has_perm = i % 2 == 1
                yield (f"bsr_spmm {dt} bs={bs} {cfg.block_n}/{cfg.num_warps}w/{cfg.num_stages}st perm={has_perm}",
                       bsr_mod._bsr_spmm_kernel, spmm_types,
                       {"BS": bs, "BLOCK_N": cfg.block_n, "HAS_PERM": has_perm, "EVEN_N": not has_perm,
                        "INPUT_PRECISION": precision}, cfg.num_warps, cfg.num_stages)
            for cfg in sddmm_cfgs:
                yield (f"bsr_sddmm {dt} bs={bs} {cfg.block_d}/{cfg.num_warps}w/{cfg.num_stages}st", bsr_mod._bsr_sddmm_kernel,
                       sddmm_types, {"BS": bs, "BLOCK_D": cfg.block_d, "EVEN_D": bs != 64, "INPUT_PRECISION": precision},
                       cfg.num_warps, cfg.num_stages)
        types = {"row_offsets_ptr": "*i32", "row_swizzle_ptr": "*i32", "y_ptr": PTR[dt], "g_ptr": PTR[dt],
                 "dx_ptr": PTR[dt], "stride_yb": "i64", "stride_gb": "i64", "stride_dxb": "i64", "scale": "fp32", "m": "i32"}
        for single in (True, False):
            for rows in ((1, 4) if single else (1,)):
                yield (f"softmax_backward {dt} single={single} rows={rows}", softmax_mod._softmax_backward_kernel, types,
                       {"BLOCK": 1024, "SINGLE": single, "ROWS": rows}, 4, 1)


def value_load_checks():
    """The bitmap kernel's per-element value loads must put a warp's lanes on the 32 bits of one
    word (one row's consecutive stored entries: a sector or two a load). Left to itself Triton put
    them on 32 rows (32 sectors a load, 3 of each 32 bytes used: the kernel's L1-bound form,
    ncu on the H200, benchmarks/results/2026-12-01_h200_5b4e589/ncu.txt)."""
    types = {"bitmap_ptr": "*i32", "word_offsets_ptr": "*i32", "values_ptr": "*bf16", "b_ptr": "*bf16",
             "bias_ptr": "*bf16", "c_ptr": "*bf16", "partials_ptr": "*fp32", "arrivals_ptr": "*i32", "m": "i32", "n": "i32", "k": "i32", "kw": "i32", "k_tiles": "i32",
             "stride_vb": "i64", "stride_bb": "i64", "stride_bk": "i64", "stride_bn": "i64",
             "stride_biasb": "i64", "stride_cb": "i64", "stride_cm": "i64", "stride_cn": "i64"}
    div = ("bitmap_ptr", "word_offsets_ptr", "values_ptr", "b_ptr", "bias_ptr", "c_ptr", "kw", "stride_bk", "stride_cm")
    for n in (16, 64):
        for cfg in spmm_mod.bitmap_candidates(n):
            if not cfg.coalesce:
                continue
            yield (f"spmm-bitmap value loads n={n} {cfg.rows}x{cfg.block_k} w{cfg.num_warps}", spmm_mod._spmm_bitmap_kernel,
                   types, {"stride_bn": 1, "stride_cn": 1, "BLOCK_M": cfg.rows, "BLOCK_K": cfg.block_k,
                           "BLOCK_N": cfg.block_n, "EVEN_K": True, "EVEN_N": True, "HAS_BIAS": False, "RELU": False,
                           "SPLIT": False, "HW_POPC": True, "COALESCE": True, "INPUT_PRECISION": "ieee", "PREFETCH": cfg.prefetch},
                   cfg.num_warps,
                   cfg.num_stages, div)


def _value_load_lanes(ttgir: str) -> str | None:
    """threadsPerWarp of the layout of the 3-D bf16 load (the bitmap kernel's values), or None."""
    layouts = dict(re.findall(r"^(#\w+) = #ttg\.blocked<\{.*?threadsPerWarp = (\[[^\]]*\])", ttgir, re.M))
    m = re.search(r"tt\.load .*: tensor<\d+x\d+x32x!tt\.ptr<bf16>, (#\w+)>", ttgir)
    return layouts.get(m.group(1)) if m else None


def _vector_verdict(name: str, kernel) -> str | None:
    """None when the gathers kept their 16-byte loads (and, where the name asks, no barrier), else why not."""
    ptx = kernel.asm["ptx"]
    wide = ptx.count("ld.global.v4.") + ptx.count("ld.global.nc.v4.")
    if not wide:
        return "no 16-byte global loads in the PTX (the gathers lost their vectorization)"
    if "no bar.sync" in name and "bar.sync" in ptx:
        return "a barrier in the PTX (a shared-memory layout conversion came back)"
    return None


def _value_load_verdict(name: str, kernel) -> str | None:
    lanes = _value_load_lanes(kernel.asm["ttgir"])
    return None if lanes == "[1, 1, 32]" else f"value loads with lanes {lanes}, not on one word's 32 bits"


def _run_checks(checks, only: str, verdict) -> int:
    """Compile each check's kernel (specialized as its ``divisible`` says) and print its verdict;
    the number of failures."""
    failures = 0
    for name, fn, types, constexprs, warps, stages, divisible in checks:
        if only not in name:
            continue
        try:
            why = verdict(name, _compile(fn, types, constexprs, warps, stages, divisible))
        except Exception as exc:  # report every failure, then fail
            why = f"{type(exc).__name__}: {str(exc)[:500]}"
        failures += why is not None
        print(f"FAIL  {name:40s} {why}" if why else f"ok    {name}")
    return failures


def main(argv: list[str]) -> int:
    only = argv[1] if len(argv) > 1 else ""
    failures = 0
    for name, fn, types, constexprs, warps, stages in variants():
        if only not in name:
            continue
        t0 = time.perf_counter()
        try:
            kernel = _compile(fn, types, constexprs, warps, stages)
            if kernel.metadata.shared > H100_SMEM_PER_BLOCK:
                failures += 1
                print(f"FAIL  {name:40s} needs {kernel.metadata.shared} B of shared memory, over the H100's {H100_SMEM_PER_BLOCK}")
                continue
            print(f"ok    {name:40s} {time.perf_counter() - t0:5.1f}s  shared={kernel.metadata.shared}")
        except Exception as exc:  # report every failure, then fail
            failures += 1
            print(f"FAIL  {name:40s} {type(exc).__name__}: {str(exc)[:500]}")
    failures += _run_checks(vector_checks(), only, _vector_verdict)
    failures += _run_checks(value_load_checks(), only, _value_load_verdict)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
