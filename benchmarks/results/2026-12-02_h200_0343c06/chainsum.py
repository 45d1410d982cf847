import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
d = {}
for r in rows:
    if r.get('section') == 'chain' and r.get('status') == 'ok':
        d.setdefault(r['name'], {})[r['form']] = r['us']
    elif r.get('section') == 'chain':
        print('not ok', r.get('name'), r.get('form'), r.get('status'), str(r.get('error', r.get('rel_err')))[:100])
for grp in ('rn50', 'transformer'):
    for f in ('library', 'swb', 'pf', 'swbpf'):
        rat = [v[f] / v['copy'] for k, v in d.items() if k.startswith(grp) and f in v and 'copy' in v]
        if rat:
            print(f"{grp:12s} {f:8s} n={len(rat):3d} geomean {math.exp(sum(map(math.log, rat))/len(rat)):.3f} min {min(rat):.3f} max {max(rat):.3f}")
