set -uo pipefail
cd .tdt/pf
export PYTHONPATH=src PYTHONUNBUFFERED=1 SGK_GIT_SHA=$1
ANCH=../../.dlmc/anchors_dlmc_h100_2026-11-25.json
B=(--warmup 5 --rep 25 --suite dlmc --dlmc-dir ../../.dlmc --anchors "$ANCH" -q)
echo "=== spmmbf16 $(date +%T)"
timeout 190 python3 -m sgk bench spmm "${B[@]}" --dtype bf16 --impl sgk,cublas_bf16,cusparse --out "$OUT/spmm_dlmc_bf16.json" 2>&1 | tail -6
echo "=== spmm32 $(date +%T)"
timeout 150 python3 -m sgk bench spmm "${B[@]}" --dtype fp32 --impl sgk,cublas,cusparse --out "$OUT/spmm_dlmc_fp32.json" 2>&1 | tail -6
echo "=== tests $(date +%T)"
timeout 60 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_spmm.py -k "int32" 2>&1 | tee $OUT/pytest_gpu_int32.txt | tail -3
echo "=== end $(date +%T)"
