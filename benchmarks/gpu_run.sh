#!/usr/bin/env bash
# One device call: GPU tests, then the DLMC benchmarks. Usage (on the GPU machine, repo root):
#   SGK_GIT_SHA=<sha> bash benchmarks/gpu_run.sh tests|spmm32|spmm16|sddmm|attention ...
# Needs ./.dlmc (a copy of shared/dlmc plus the anchors JSON) for the DLMC suites.
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-.device_out}; mkdir -p "$OUT"
ANCH=.dlmc/anchors_dlmc_h100_2026-11-25.json
for step in "$@"; do
  echo "=== $step ($(date +%T))"
  case $step in
    tests) python3 -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tee "$OUT/pytest_gpu.log" | tail -25 ;;
    overhead) python3 benchmarks/overhead.py 2>&1 | head -8 ;;
    spmm32) python3 -m sgk bench spmm --warmup 10 --rep 50 --suite dlmc --dlmc-dir .dlmc --anchors $ANCH --dtype fp32 -q \
              --impl sgk,cublas,cublas_tf32,cublas_bf16,cusparse --out "$OUT/spmm_dlmc_fp32.json" --plot "$OUT/spmm_dlmc_fp32.png" 2>&1 | tail -22 ;;
    spmm16) for dt in bf16 fp16; do python3 -m sgk bench spmm --warmup 10 --rep 50 --suite dlmc --dlmc-dir .dlmc --anchors $ANCH --dtype $dt -q \
              --impl sgk,cublas_bf16,cusparse --out "$OUT/spmm_dlmc_$dt.json" --plot "$OUT/spmm_dlmc_$dt.png" 2>&1 | tail -14; done ;;
    sddmm) python3 -m sgk bench sddmm --warmup 10 --rep 50 --suite dlmc --dlmc-dir .dlmc --anchors $ANCH --dtype fp32 --filter transformer -q \
              --impl sgk,cublas,cusparse,cusparse_colmajor --out "$OUT/sddmm_dlmc_fp32.json" 2>&1 | tail -14 ;;
    attention) python3 -m sgk bench attention -q --L 4096,12288 --sparsity 0.9,0.95 --warmup 10 --rep 50 --out "$OUT/attention.json" --plot "$OUT/attention.png" 2>&1 | tail -30 ;;
    *) echo "unknown step $step" ;;
  esac
done
