"""Re-time sgk.spmm at 8192², N = 1, 80/90/95% (the 90% case measured 0.149 ms in a395ffa/decode_bf16.json
against 0.040 at 80% with the same configuration): three do_bench medians each, cuBLAS bf16 beside."""
import torch, sgk, json, os
from triton.testing import do_bench
from sgk.kernels import spmm as K
g = torch.Generator().manual_seed(5)
rows = []
for s in (0.8, 0.9, 0.95):
    a = sgk.CSRMatrix.random(8192, 8192, s, dtype=torch.bfloat16, generator=g).cuda()
    x = torch.randn(8192, 1, generator=g).cuda().bfloat16()
    w = a.to_dense()
    ref = w.double() @ x.double()
    out = sgk.spmm(a, x)
    err = float((out.double() - ref).abs().max() / ref.abs().max())
    cfg = str(K.last_config)
    t = [do_bench(lambda: sgk.spmm(a, x), warmup=5, rep=25, return_mode="median") for _ in range(3)]
    tc = do_bench(lambda: w @ x, warmup=5, rep=25, return_mode="median")
    rows.append(dict(sparsity=s, n=1, sgk_ms=t, cublas_bf16_ms=tc, err=err, config=cfg))
    print(s, [round(v * 1e3, 1) for v in t], round(tc * 1e3, 1), err, cfg[:70])
json.dump({"rows": rows, "sha": os.environ.get("SGK_GIT_SHA")}, open(os.environ["OUT"] + "/recheck_n1.json", "w"), indent=1)
