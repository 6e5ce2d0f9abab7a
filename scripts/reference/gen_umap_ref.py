#!/usr/bin/env python3
"""Reference values from umap-learn for mmembed's UMAP (tests/data/reduce/).

Run with a Python that has umap-learn (PyPI umap-learn 0.5.x; Debian 12 has no package):
    python3 -m venv --system-site-packages .venv-umap && .venv-umap/bin/pip install umap-learn
    .venv-umap/bin/python scripts/reference/gen_umap_ref.py [OUT_DIR]
Deterministic inputs (fixed numpy seeds, stored as float32 .npy: what mmembed reads).
Writes:
  umap_small.npy          150 x 8 float32, 3 Gaussian clusters (fuzzy-set reference input)
  umap_fuzzy.json         for metrics euclidean, cosine (distance), manhattan and n_neighbors 15 / 7:
                          umap-learn's sigmas, rhos and the fuzzy union graph (COO, sorted),
                          from the exact kNN (metric="precomputed" on sklearn's pairwise distances,
                          which is what umap-learn's UMAP.fit does below 4096 points);
                          find_ab_params(spread, min_dist) for a few (min_dist, spread) pairs
  umap_mixture.npy        1000 x 16 float32, 10-cluster Gaussian mixture; labels in
  umap_mixture_labels.txt
  umap_mixture.json       umap-learn's UMAP(n_neighbors=15, min_dist=0.1, random_state=s) on it for
                          five seeds: trustworthiness (k=10, sklearn) of each embedding and their mean
"""
import json
import os
import sys

import numpy as np
import sklearn
import umap
from sklearn.manifold import trustworthiness
from sklearn.metrics import pairwise_distances
from umap.umap_ import find_ab_params, fuzzy_simplicial_set


def mixture(seed, n, d, clusters, center_scale):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=center_scale, size=(clusters, d))
    labels = np.arange(n) % clusters
    x = centers[labels] + rng.normal(size=(n, d))
    return x.astype(np.float32), labels


def fuzzy_case(x, metric, k):
    dmat = pairwise_distances(x.astype(np.float64), metric=metric)
    graph, sigmas, rhos = fuzzy_simplicial_set(
        dmat, k, np.random.RandomState(0), "precomputed")
    coo = graph.tocoo()
    order = np.lexsort((coo.col, coo.row))
    return {
        "metric": metric, "n_neighbors": k,
        "sigmas": [float(v) for v in sigmas], "rhos": [float(v) for v in rhos],
        "rows": [int(v) for v in coo.row[order]], "cols": [int(v) for v in coo.col[order]],
        "vals": [float(v) for v in coo.data[order]],
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "..", "tests", "data", "reduce")
    os.makedirs(out, exist_ok=True)
    versions = {"umap-learn": umap.__version__, "numpy": np.__version__,
                "scikit-learn": sklearn.__version__}

    small, _ = mixture(1, 150, 8, 3, 2.0)
    np.save(os.path.join(out, "umap_small.npy"), small)
    cases = [fuzzy_case(small, m, k) for m, k in
             [("euclidean", 15), ("euclidean", 7), ("cosine", 15), ("manhattan", 10)]]
    ab = []
    for min_dist, spread in [(0.1, 1.0), (0.0, 1.0), (0.5, 1.0), (0.25, 2.0), (0.001, 0.5), (1.0, 1.0)]:
        a, b = find_ab_params(spread, min_dist)
        ab.append({"min_dist": min_dist, "spread": spread, "a": float(a), "b": float(b)})
    with open(os.path.join(out, "umap_fuzzy.json"), "w") as f:
        json.dump({"versions": versions, "input": "umap_small.npy", "cases": cases, "ab": ab}, f)

    x, labels = mixture(7, 1000, 16, 10, 3.0)
    np.save(os.path.join(out, "umap_mixture.npy"), x)
    with open(os.path.join(out, "umap_mixture_labels.txt"), "w") as f:
        f.write("".join(f"{v}\n" for v in labels))
    runs = []
    for seed in range(5):
        y = umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=seed).fit_transform(x)
        runs.append({"seed": seed, "trustworthiness_10": float(trustworthiness(x, y, n_neighbors=10))})
    mean = float(np.mean([r["trustworthiness_10"] for r in runs]))
    with open(os.path.join(out, "umap_mixture.json"), "w") as f:
        json.dump({"versions": versions, "input": "umap_mixture.npy", "n_neighbors": 15,
                   "min_dist": 0.1, "runs": runs, "trustworthiness_10_mean": mean}, f, indent=1)
    print("wrote", out, versions, "trustworthiness@10 mean", mean)


if __name__ == "__main__":
    main()
