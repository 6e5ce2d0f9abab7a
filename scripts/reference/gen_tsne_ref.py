#!/usr/bin/python3
"""Reference values for mmembed's t-SNE (tests/data/reduce/), from scikit-learn.

Run with Debian's Python (apt: python3-sklearn):
    /usr/bin/python3 scripts/reference/gen_tsne_ref.py [OUT_DIR]
Deterministic: fixed seeds; inputs rounded to float32 (what mmembed reads).

Writes
- tsne_affinities.json: a small input (80 x 6), its exact 30 nearest neighbours with squared
  Euclidean distances (float32, as sklearn's TSNE passes them), the conditional affinities
  p_{j|i} from sklearn.manifold._utils._binary_search_perplexity at perplexity 10, and the
  joint P of sklearn.manifold._t_sne._joint_probabilities_nn (COO, sorted by row then column).
- tsne_mixture.npy (float32 [500, 32]) and tsne_mixture_labels.txt: a seeded 10-cluster
  Gaussian mixture;
- tsne_mixture.json: sklearn.manifold.TSNE's embedding of it (perplexity 30, init "pca",
  learning_rate "auto", random_state 0), the trustworthiness (k = 10) of that embedding and
  its silhouette score by true label (sklearn.metrics.silhouette_score).
"""
import json
import os
import sys

import numpy as np
import sklearn
from scipy.sparse import csr_matrix
from sklearn.manifold import TSNE, trustworthiness
from sklearn.manifold import _t_sne, _utils
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors


def affinities(out_dir):
    rng = np.random.default_rng(20261127)
    n, d, k, perplexity = 80, 6, 30, 10.0
    centers = rng.normal(size=(4, d)) * 3.0
    x = (centers[rng.integers(0, 4, size=n)] + rng.normal(size=(n, d))).astype(np.float32)
    xd = x.astype(np.float64)
    nn = NearestNeighbors(n_neighbors=k, metric="euclidean").fit(xd)
    dist, ind = nn.kneighbors(None, n_neighbors=k)  # self excluded, closest first
    sq = (dist**2).astype(np.float32)
    cond = _utils._binary_search_perplexity(sq, perplexity, 0)
    # Copies: _joint_probabilities_nn sorts the CSR's arrays in place.
    dist_csr = csr_matrix(
        (sq.ravel().copy(), ind.ravel().copy(), np.arange(0, n * k + 1, k)), shape=(n, n))
    joint = _t_sne._joint_probabilities_nn(dist_csr, perplexity, 0).tocoo()
    order = np.lexsort((joint.col, joint.row))
    out = {
        "sklearn": sklearn.__version__,
        "n": n, "d": d, "k": k, "perplexity": perplexity,
        "x": x.astype(np.float64).ravel().tolist(),
        "neighbours": ind.ravel().tolist(),
        "sq_distances": sq.astype(np.float64).ravel().tolist(),
        "conditional_p": np.asarray(cond, dtype=np.float64).ravel().tolist(),
        "joint": {
            "rows": joint.row[order].tolist(),
            "cols": joint.col[order].tolist(),
            "values": np.asarray(joint.data[order], dtype=np.float64).tolist(),
        },
    }
    with open(os.path.join(out_dir, "tsne_affinities.json"), "w") as f:
        json.dump(out, f)


def mixture(out_dir):
    rng = np.random.default_rng(6)
    n, d, c = 500, 32, 10
    centers = rng.normal(size=(c, d)) * 2.0
    labels = np.arange(n) % c
    x = (centers[labels] + rng.normal(size=(n, d))).astype(np.float32)
    np.save(os.path.join(out_dir, "tsne_mixture.npy"), x)
    with open(os.path.join(out_dir, "tsne_mixture_labels.txt"), "w") as f:
        f.write("".join(f"{v}\n" for v in labels))
    tsne = TSNE(n_components=2, perplexity=30.0, init="pca", learning_rate="auto",
                random_state=0, method="barnes_hut")
    y = tsne.fit_transform(x.astype(np.float64))
    out = {
        "sklearn": sklearn.__version__,
        "params": {"perplexity": 30.0, "init": "pca", "learning_rate": "auto",
                   "n_iter": 1000, "early_exaggeration": 12.0, "angle": 0.5},
        "kl_divergence": float(tsne.kl_divergence_),
        "trustworthiness_10": float(trustworthiness(x.astype(np.float64), y, n_neighbors=10)),
        "silhouette": float(silhouette_score(y, labels)),
        "embedding": y.astype(np.float64).ravel().tolist(),
    }
    with open(os.path.join(out_dir, "tsne_mixture.json"), "w") as f:
        json.dump(out, f)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "..", "tests", "data", "reduce")
    os.makedirs(out_dir, exist_ok=True)
    affinities(out_dir)
    mixture(out_dir)


if __name__ == "__main__":
    main()
