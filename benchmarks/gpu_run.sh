#!/usr/bin/env bash
# Device runs, a step list per call. On the GPU machine, in the repo root:
#   SGK_GIT_SHA=<sha> bash benchmarks/gpu_run.sh tests targets spmm32 ...
# Steps: tests (pytest -m gpu), targets (benchmarks/targets.py), spmm32, spmm16 (bf16 + fp16),
# sddmm32, sddmm16 (bf16 + fp16), attention, decode (bf16), decodegraph (the same, CUDA-graph timer),
# blocksparse (bf16), overhead,
# spmm32graph (device time only: calls replayed from a CUDA graph, no host launch overhead),
# probe (benchmarks/probe_tc.py: bitmap decode grid, L2/DRAM read bandwidth, block-sparse grid,
# fp32 backward candidates), bsrtma (benchmarks/probe_bsr_tma.py: the persistent TMA block-sparse SpMM),
# spmmbf16 / spmmfp16 (one dtype of spmm16), wide (benchmarks/probe_wide.py: the bitmap kernel at N > 64),
# densify (benchmarks/probe_prefetch.py --only densify: the densify form against the bitmap kernel),
# host (benchmarks/probe_host.py: host time of spmm's plan paths per configuration and per part),
# chunk (benchmarks/probe_chunk.py: split gathers with the chunk index slowest over the grid, decode widths),
# scatter (benchmarks/probe_scatter.py: nonzeros scattered into a global scratch tile, then tl.dot),
# harnesshost (benchmarks/probe_harness_host.py: the suite's densify/bitmap calls' host time; needs .dlmc),
# dense (benchmarks/probe_dense.py: fp32 three-TF32 dense products, bf16 Triton against cuBLAS, sgk's fp32 path),
# x3 (benchmarks/probe_x3.py: the fp32 densify product's accumulation modes, B's splits, tiles),
# chain (benchmarks/probe_chain.py: DRAM latency floor, the gather kernels' offsets loaded in swizzle order; needs .dlmc).
# Everything lands under $OUT.
#
# The DLMC steps need ./.dlmc: a copy of shared/dlmc plus the anchors JSON, git-ignored, named in
# the call's carry. Here, once:
#   mkdir -p .dlmc && cp -r ../shared/dlmc/. .dlmc/ && cp ../shared/anchors/dlmc_h100_2026-11-25.json .dlmc/anchors_dlmc_h100_2026-11-25.json
# Suggested split (each call under the 10-minute command limit; budget the device time first):
#   call 1: tests targets     call 2: spmm32 spmm16     call 3: sddmm32 sddmm16
#   call 4: attention decode blocksparse
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-.device_out}; mkdir -p "$OUT"
ANCH=.dlmc/anchors_dlmc_h100_2026-11-25.json
BENCH=(--warmup 5 --rep 25 --suite dlmc --dlmc-dir .dlmc --anchors "$ANCH" -q)
for step in "$@"; do
  echo "=== $step ($(date +%T))"
  case $step in
    tests) python3 -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tee "$OUT/pytest_gpu.log" | tail -25 ;;
    targets) python3 benchmarks/targets.py --out "$OUT/targets.json" 2>&1 | tee "$OUT/targets.log" | sed -n '/== targets ==/,$p' ;;
    overhead) python3 benchmarks/overhead.py 2>&1 | head -8 ;;
    spmm32) python3 -m sgk bench spmm "${BENCH[@]}" --dtype fp32 --impl sgk,cublas,cublas_tf32,cublas_bf16,cusparse \
              --out "$OUT/spmm_dlmc_fp32.json" --plot "$OUT/spmm_dlmc_fp32.png" 2>&1 | tail -22 ;;
    spmm32graph) python3 -m sgk bench spmm "${BENCH[@]}" --dtype fp32 --impl sgk,cublas,cusparse --timer cudagraph \
              --out "$OUT/spmm_dlmc_fp32_cudagraph.json" 2>&1 | tail -10 ;;
    spmmbf16) python3 -m sgk bench spmm "${BENCH[@]}" --dtype bf16 --impl sgk,cublas_bf16,cusparse \
              --out "$OUT/spmm_dlmc_bf16.json" 2>&1 | tail -14 ;;
    spmmfp16) python3 -m sgk bench spmm "${BENCH[@]}" --dtype fp16 --impl sgk,cublas_bf16,cusparse \
              --out "$OUT/spmm_dlmc_fp16.json" 2>&1 | tail -14 ;;
    densify) python3 benchmarks/probe_prefetch.py --only densify --budget "${DENSIFY_BUDGET:-150}" --out "$OUT/probe_densify.json" 2>&1 | tee "$OUT/probe_densify.log" | sed -n '/== probe_prefetch ==/,$p' ;;
    host) python3 benchmarks/probe_host.py --budget "${HOST_BUDGET:-240}" --out "$OUT/probe_host.json" 2>&1 | tee "$OUT/probe_host.log" | sed -n '/== probe_host ==/,$p' ;;
    chunk) python3 benchmarks/probe_chunk.py --budget "${CHUNK_BUDGET:-300}" --out "$OUT/probe_chunk.json" 2>&1 | tee "$OUT/probe_chunk.log" | sed -n '/== probe_chunk ==/,$p' ;;
    scatter) python3 benchmarks/probe_scatter.py --budget "${SCATTER_BUDGET:-300}" --out "$OUT/probe_scatter.json" 2>&1 | tee "$OUT/probe_scatter.log" | sed -n '/== probe_scatter ==/,$p' ;;
    harnesshost) python3 benchmarks/probe_harness_host.py --out "$OUT/probe_harness_host.json" 2>&1 | tee "$OUT/probe_harness_host.log" | sed -n '/== probe_harness_host ==/,$p' ;;
    dense) python3 benchmarks/probe_dense.py --only "${DENSE_ONLY:-fp32,bf16,sgk}" --budget "${DENSE_BUDGET:-240}" --out "$OUT/probe_dense.json" 2>&1 | tee "$OUT/probe_dense.log" | sed -n '/== probe_dense ==/,$p' ;;
    chain) python3 benchmarks/probe_chain.py --budget "${CHAIN_BUDGET:-300}" --out "$OUT/probe_chain.json" 2>&1 | tee "$OUT/probe_chain.log" | sed -n '/== probe_chain ==/,$p' ;;
    x3) python3 benchmarks/probe_x3.py --budget "${X3_BUDGET:-300}" --out "$OUT/probe_x3.json" 2>&1 | tee "$OUT/probe_x3.log" | sed -n '/== probe_x3 ==/,$p' ;;
    wide) python3 benchmarks/probe_wide.py --budget "${WIDE_BUDGET:-240}" --out "$OUT/probe_wide.json" 2>&1 | tee "$OUT/probe_wide.log" | sed -n '/== probe_wide ==/,$p' ;;
    spmm16) for dt in bf16 fp16; do python3 -m sgk bench spmm "${BENCH[@]}" --dtype $dt --impl sgk,cublas_bf16,cusparse \
              --out "$OUT/spmm_dlmc_$dt.json" 2>&1 | tail -14; done ;;
    sddmm32) python3 -m sgk bench sddmm "${BENCH[@]}" --dtype fp32 --impl sgk,cublas,cusparse,cusparse_colmajor \
              --out "$OUT/sddmm_dlmc_fp32.json" 2>&1 | tail -14 ;;
    sddmm16) for dt in bf16 fp16; do python3 -m sgk bench sddmm "${BENCH[@]}" --dtype $dt --impl sgk,cublas_bf16,cusparse \
              --out "$OUT/sddmm_dlmc_$dt.json" 2>&1 | tail -12; done ;;
    attention) python3 -m sgk bench attention -q --L 4096,12288 --sparsity 0.9,0.95 --warmup 5 --rep 25 \
              --out "$OUT/attention.json" --plot "$OUT/attention.png" 2>&1 | tail -30 ;;
    decode) python3 -m sgk bench spmm --suite decode --dtype bf16 --impl sgk,cublas_bf16 --warmup 5 --rep 25 -q \
              --out "$OUT/decode_bf16.json" --plot "$OUT/decode_bf16.png" 2>&1 | tail -12 ;;
    decodegraph) python3 -m sgk bench spmm --suite decode --dtype bf16 --impl sgk,cublas_bf16 --rep 25 -q --timer cudagraph \
              --out "$OUT/decode_bf16_cudagraph.json" 2>&1 | tail -12 ;;
    blocksparse) python3 -m sgk bench blocksparse --dtype bf16 --impl sgk,cublas,torch_bsr --warmup 5 --rep 25 -q \
              --out "$OUT/blocksparse_bf16.json" --plot "$OUT/blocksparse_bf16.png" 2>&1 | tail -22 ;;
    probe) python3 benchmarks/probe_tc.py --out "$OUT/probe_tc.json" 2>&1 | tee "$OUT/probe_tc.log" | sed -n '/== probe_tc ==/,$p' ;;
    bsrtma) python3 benchmarks/probe_bsr_tma.py --budget "${BSRTMA_BUDGET:-300}" --out "$OUT/probe_bsr_tma.json" 2>&1 | tee "$OUT/probe_bsr_tma.log" | sed -n '/== probe_bsr_tma ==/,$p' ;;
    *) echo "unknown step $step" ;;
  esac
done
