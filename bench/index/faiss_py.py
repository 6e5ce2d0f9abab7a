#!/usr/bin/env python3
"""FAISS's own Python package (PyPI faiss-cpu) on bench_index's data, with the same parameters,
side by side with mmembed (issue #21). Reads DIR/base.npy, DIR/queries.npy, DIR/truth.npy written
by bench_index; prints one JSON object.

    python faiss_py.py DIR [--threads 1] [--build-threads 2] [--only flat,hnsw,ivfpq]
"""
import argparse
import json
import math
import os
import sys
import time

import faiss
import numpy as np


def latency(search, q):
    ms = []
    for i in range(len(q)):
        t0 = time.perf_counter()
        _, ids = search(q[i:i + 1])
        ms.append((time.perf_counter() - t0) * 1000)
        yield ids[0]
    ms.sort()
    latency.last = {"mean_ms": sum(ms) / len(ms), "p50_ms": ms[len(ms) // 2],
                    "p99_ms": ms[min(len(ms) - 1, len(ms) * 99 // 100)]}


def recall(found, truth):
    hit = sum(len(set(f[:10].tolist()) & set(t.tolist())) for f, t in zip(found, truth))
    return hit / truth.size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--build-threads", type=int, default=2)
    ap.add_argument("--only", help="comma-separated: flat, hnsw, ivfpq (default: all)")
    a = ap.parse_args()
    only = set(a.only.split(",")) if a.only else {"flat", "hnsw", "ivfpq"}
    x = np.load(os.path.join(a.dir, "base.npy"))
    q = np.load(os.path.join(a.dir, "queries.npy"))
    truth = np.load(os.path.join(a.dir, "truth.npy")).astype(np.int64)
    n, d = x.shape
    out = {"faiss": faiss.__version__, "numpy": np.__version__, "n": n, "dim": d,
           "queries": len(q), "threads": a.threads, "build_threads": a.build_threads}
    if "flat" in only:
        faiss.omp_set_num_threads(a.threads)
        flat = faiss.IndexFlatIP(d)
        flat.add(x)
        found = list(latency(lambda v: flat.search(v, 10), q[:200]))
        out["flat"] = dict(latency.last, recall_vs_truth=recall(np.array(found), truth[:200]),
                           scan_gbs=n * d * 4 / (latency.last["p50_ms"] / 1000) / 1e9)
        del flat
    if "hnsw" in only:
        faiss.omp_set_num_threads(a.build_threads)
        idx = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = 80
        t0 = time.perf_counter()
        idx.add(x)
        res = {"m": 32, "ef_construction": 80, "build_s": time.perf_counter() - t0, "runs": []}
        faiss.omp_set_num_threads(a.threads)
        for ef in (16, 32, 64, 128, 256):
            p = faiss.SearchParametersHNSW(efSearch=max(ef, 10))
            found = list(latency(lambda v: idx.search(v, 10, params=p), q))
            res["runs"].append(dict(latency.last, ef_search=ef, recall10=recall(np.array(found), truth)))
        out["hnsw"] = res
        del idx
    if "ivfpq" in only:
        faiss.omp_set_num_threads(a.build_threads)
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
        quant = faiss.IndexFlatIP(d)
        ivf = faiss.IndexIVFPQ(quant, d, nlist, d // 8, 8, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = 1234
        ivf.pq.cp.seed = 1234
        refine = faiss.IndexRefineFlat(ivf)  # exact re-scoring of k * k_factor candidates
        refine.k_factor = 10
        t0 = time.perf_counter()
        train_n = min(n, max(nlist, 256) * 256)
        rows = (np.arange(train_n) * n) // train_n
        refine.train(x[rows])
        refine.add(x)
        build_s = time.perf_counter() - t0
        size = faiss.serialize_index(ivf).nbytes
        res = {"nlist": nlist, "pq_m": d // 8, "rescore": 10, "build_s": build_s,
               "ann_file_mb": size / 1e6, "runs": []}
        faiss.omp_set_num_threads(a.threads)
        for nprobe, rescore in ((16, 10), (32, 10), (64, 10), (128, 10), (32, 50), (64, 50),
                                (64, 100)):
            p = faiss.SearchParametersIVF(nprobe=nprobe)
            rp = faiss.IndexRefineSearchParameters(k_factor=rescore, base_index_params=p)
            found = list(latency(lambda v: refine.search(v, 10, params=rp), q))
            res["runs"].append(dict(latency.last, nprobe=nprobe, rescore=rescore,
                                    recall10=recall(np.array(found), truth)))
        out["ivfpq"] = res
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
