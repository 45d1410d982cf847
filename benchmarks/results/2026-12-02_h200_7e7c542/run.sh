set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1 SGK_GIT_SHA=$1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
ANCH=.dlmc/anchors_dlmc_h100_2026-11-25.json
echo "=== spmm32graph $(date +%T)"
timeout 200 python3 -m sgk bench spmm --warmup 5 --rep 25 --suite dlmc --dlmc-dir .dlmc --anchors "$ANCH" -q --dtype fp32 --impl sgk,cublas,cusparse --timer cudagraph --out "$OUT/spmm_dlmc_fp32_cudagraph.json" 2>&1 | tail -12
echo "=== chain $(date +%T)"
timeout 230 python3 benchmarks/probe_chain.py --budget 190 --out $OUT/probe_chain.json 2>&1 | tee $OUT/probe_chain.log | sed -n '/== probe_chain ==/,$p' | tail -60
echo "=== tests $(date +%T)"
timeout 140 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_spmm_bitmap.py -k "densify or wide_n or plan" 2>&1 | tee $OUT/pytest_gpu_bitmap_main.txt | tail -6
echo "=== end $(date +%T)"
