#!/usr/bin/python3
"""Golden values for mmembed's metrics, PCA and quality metrics (tests/data/analysis/).

Run with Debian's Python (apt: python3-scipy python3-sklearn):
    /usr/bin/python3 scripts/reference/gen_analysis.py [OUT_DIR]
Deterministic: fixed seeds, inputs rounded to float32 (what mmembed reads) and evaluated in
float64 by SciPy / scikit-learn. Output: JSON, NaN written as null.
"""
import json
import math
import os
import sys

import numpy as np
import scipy
import sklearn
from scipy.spatial.distance import cdist
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def tolist(a):
    a = np.asarray(a, dtype=np.float64)
    return [None if math.isnan(v) else float(v) for v in a.ravel()]


def matrix(a):
    a = np.atleast_2d(np.asarray(a))
    return {"rows": int(a.shape[0]), "cols": int(a.shape[1]), "data": tolist(a)}


def distances(rng):
    d = 37
    x = f32(rng.normal(size=(6, d)))
    y = f32(rng.normal(size=(5, d)) * 2.0 + 0.5)
    y[0] = f32(x[0] + 1e-4 * rng.normal(size=d))  # near-duplicate: cancellation in the GEMM form
    y[1] = x[1]  # exact duplicate: distance 0
    x[5] = 0.0  # zero vectors: cosine undefined (cdist gives NaN)
    y[4] = 0.0
    out = {"x": matrix(x), "y": matrix(y), "metrics": []}
    cases = [
        ("cosine", None, lambda: 1.0 - cdist(x, y, "cosine")),
        ("cosine-distance", None, lambda: cdist(x, y, "cosine")),
        ("euclidean", None, lambda: cdist(x, y, "euclidean")),
        ("sqeuclidean", None, lambda: cdist(x, y, "sqeuclidean")),
        ("dot", None, lambda: x @ y.T),
        ("manhattan", None, lambda: cdist(x, y, "cityblock")),
        ("chebyshev", None, lambda: cdist(x, y, "chebyshev")),
    ]
    for p in (1.0, 1.5, 2.0, 3.0, 7.25, math.inf):
        cases.append(("minkowski", p, lambda p=p: cdist(x, y, "minkowski", p=p)))
    with np.errstate(all="ignore"):
        for name, p, fn in cases:
            entry = {"metric": name, "values": matrix(fn())}
            if p is not None:
                entry["p"] = "inf" if math.isinf(p) else p
            out["metrics"].append(entry)
    return out


def pca_case(rng, n, d, k, scale):
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    x = rng.normal(size=(n, d)) * scale[:d] @ basis.T + rng.normal(size=d) * 3.0
    x = f32(x)
    x_new = f32(rng.normal(size=(7, d)) * 2.0)
    pca = PCA(n_components=k, svd_solver="full").fit(x)
    return {
        "x": matrix(x), "x_new": matrix(x_new), "n_components": k,
        "mean": tolist(pca.mean_), "components": matrix(pca.components_),
        "explained_variance": tolist(pca.explained_variance_),
        "explained_variance_ratio": tolist(pca.explained_variance_ratio_),
        "singular_values": tolist(pca.singular_values_),
        "transform": matrix(pca.transform(x)), "transform_new": matrix(pca.transform(x_new)),
    }


def knn_sets(a, k, metric="euclidean"):
    dist = cdist(a, a, metric)
    np.fill_diagonal(dist, np.inf)
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def quality(rng):
    n, d = 120, 10
    centers = rng.normal(size=(4, d)) * 3.0
    x = f32(centers[rng.integers(0, 4, size=n)] + rng.normal(size=(n, d)))
    y = f32(x @ rng.normal(size=(d, 2)) + 0.5 * rng.normal(size=(n, 2)))
    out = {"x": matrix(x), "y": matrix(y), "cases": []}
    for k in (5, 10, 15):
        for metric in ("euclidean", "cosine"):
            nx, ny = knn_sets(x, k, metric), knn_sets(y, k)
            pres = np.mean([len(set(nx[i]) & set(ny[i])) / k for i in range(n)])
            out["cases"].append({
                "k": k, "metric": metric,
                "trustworthiness": float(trustworthiness(x, y, n_neighbors=k, metric=metric)),
                # continuity is trustworthiness with the two spaces swapped (Venna & Kaski)
                "continuity": float(trustworthiness(y, x, n_neighbors=k, metric="euclidean"))
                if metric == "euclidean" else None,
                "knn_preservation": float(pres),
            })
    return out


def inputs(rng, out_dir):
    """Small input files for the matrix readers and the CLI (tests/data/analysis/inputs/)."""
    d = os.path.join(out_dir, "inputs")
    os.makedirs(d, exist_ok=True)
    centers = rng.normal(size=(3, 6)) * 4.0
    labels = np.repeat(np.arange(3), 4)
    x = (centers[labels] + rng.normal(size=(12, 6))).astype(np.float32)
    np.save(os.path.join(d, "emb_f32.npy"), x)
    np.save(os.path.join(d, "emb_f64_fortran.npy"), np.asfortranarray(x.astype(np.float64)))
    np.save(os.path.join(d, "emb_big_endian.npy"), x.astype(">f4"))
    rows = [",".join(repr(float(v)) for v in r) for r in x]
    with open(os.path.join(d, "emb.csv"), "w") as f:
        f.write(",".join(f"d{i}" for i in range(6)) + "\n" + "\n".join(rows) + "\n")
    with open(os.path.join(d, "emb.tsv"), "w") as f:
        f.write("\n".join(r.replace(",", "\t") for r in rows) + "\n")
    with open(os.path.join(d, "emb.jsonl"), "w") as f:
        for i, r in enumerate(x):
            f.write(json.dumps({"id": i, "embedding": [float(v) for v in r]}) + "\n")
    with open(os.path.join(d, "labels.txt"), "w") as f:
        f.write("".join(f"{['cat', 'dog', 'bird'][l]}\n" for l in labels))
    np.save(os.path.join(d, "other_dim.npy"), rng.normal(size=(5, 7)).astype(np.float32))
    z = x.copy()
    z[3] = 0.0
    np.save(os.path.join(d, "zero_row.npy"), z)
    np.save(os.path.join(d, "int32.npy"), np.arange(12, dtype=np.int32).reshape(3, 4))
    np.save(os.path.join(d, "rank3.npy"), np.zeros((2, 2, 2), dtype=np.float32))
    np.save(os.path.join(d, "object.npy"), np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with open(os.path.join(d, "bad_nan.csv"), "w") as f:
        f.write("1,2,3\n4,nan,6\n")
    with open(os.path.join(d, "ragged.csv"), "w") as f:
        f.write("1,2,3\n4,5,6\n7,8\n")
    with open(os.path.join(d, "one_point.csv"), "w") as f:
        f.write("1,2,3\n")
    # 3 clusters in 10-d for `mmembed reduce`
    c = rng.normal(size=(3, 10)) * 5.0
    lab = np.repeat(np.arange(3), 20)
    np.save(os.path.join(d, "clusters.npy"), (c[lab] + rng.normal(size=(60, 10))).astype(np.float32))
    with open(os.path.join(d, "clusters_labels.txt"), "w") as f:
        f.write("".join(f"c{l}\n" for l in lab))


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "analysis")
    os.makedirs(out_dir, exist_ok=True)
    versions = {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__}
    rng = np.random.default_rng(20240601)
    files = {
        "distances.json": distances(rng),
        "pca.json": {"tall": pca_case(rng, 300, 12, 5, np.array([9, 7, 5, 4, 3, 2.5, 2, 1.5, 1, .7, .5, .3])),
                     "wide": pca_case(rng, 40, 60, 10, np.linspace(8, 0.1, 60))},
        "quality.json": quality(rng),
    }
    inputs(rng, out_dir)
    for name, payload in files.items():
        payload["generator"] = {"script": "scripts/reference/gen_analysis.py", "versions": versions}
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(payload, f, separators=(",", ":"))
            f.write("\n")


if __name__ == "__main__":
    main()
