set -uo pipefail
cd .tdt/pf
export PYTHONPATH=src PYTHONUNBUFFERED=1 SGK_GIT_SHA=$1
ANCH=../../.dlmc/anchors_dlmc_h100_2026-11-25.json
B=(--warmup 5 --rep 25 --suite dlmc --dlmc-dir ../../.dlmc --anchors "$ANCH" -q)
echo "=== spmm32 $(date +%T)"
timeout 170 python3 -m sgk bench spmm "${B[@]}" --dtype fp32 --impl sgk,cublas,cublas_tf32,cublas_bf16,cusparse --out "$OUT/spmm_dlmc_fp32.json" 2>&1 | tail -7
echo "=== spmmbf16 $(date +%T)"
timeout 130 python3 -m sgk bench spmm "${B[@]}" --dtype bf16 --impl sgk,cublas_bf16,cusparse --out "$OUT/spmm_dlmc_bf16.json" 2>&1 | tail -7
cd ../..
echo "=== chain (main tree) $(date +%T)"
timeout 80 python3 benchmarks/probe_chain.py --only chain --budget 70 --out $OUT/probe_chain_pf.json > $OUT/probe_chain_pf.log 2>&1; python3 .tdt/chainsum.py $OUT/probe_chain_pf.log
cd .tdt/pf
echo "=== pfab $(date +%T)"
timeout 80 python3 pfab.py 60 $OUT/pfab.json > $OUT/pfab.log 2>&1; grep "^pfab\|Error\|error" $OUT/pfab.log | tail -20
echo "=== tests $(date +%T)"
timeout 160 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_spmm.py tests/test_launch.py -k "not every_candidate and not int32" 2>&1 | tee $OUT/pytest_gpu_pf.txt | tail -8
echo "=== end $(date +%T)"
