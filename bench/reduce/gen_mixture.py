#!/usr/bin/env python3
"""Seeded 10-cluster Gaussian mixture in 512-d for bench/reduce/run.py.

    python3 bench/reduce/gen_mixture.py [--sizes 1000,10000,50000] [--out DIR]

Writes DIR/mixture_N.npy (float32, C order) and DIR/mixture_N_labels.txt (label i % 10) for
each N. Centres ~ N(0, 1) per coordinate, unit Gaussian noise around them; numpy
default_rng(seed + N), so every size is reproducible on its own.
"""
import argparse
import os

import numpy as np


def mixture(n, d=512, clusters=10, seed=2026):
    rng = np.random.default_rng(seed + n)
    centres = rng.normal(size=(clusters, d))
    labels = np.arange(n) % clusters
    x = centres[labels] + rng.normal(size=(n, d))
    return x.astype(np.float32), labels


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for n in [int(s) for s in args.sizes.split(",")]:
        x, labels = mixture(n, args.dim)
        np.save(os.path.join(args.out, f"mixture_{n}.npy"), x)
        with open(os.path.join(args.out, f"mixture_{n}_labels.txt"), "w") as f:
            f.write("".join(f"{v}\n" for v in labels))
        print(f"wrote mixture_{n}.npy ({n} x {args.dim})")


if __name__ == "__main__":
    main()
