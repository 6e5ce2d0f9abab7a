#!/usr/bin/env python3
"""mmembed reduce against its Python peers on the same data, in one run: wall time, peak memory
(max RSS of the process) and trustworthiness (k = 10), as a Markdown table.

    python3 bench/reduce/gen_mixture.py                        # bench/reduce/data/mixture_N.npy
    .venv-umap/bin/python bench/reduce/run.py --mmembed build/apps/cli/mmembed \
        [--sizes 1000,10000,50000] [--methods umap,pca,tsne] [--threads 2] [--out results.md]

Each case runs in its own process, one after the other, so peak RSS is the process's own. The
mmembed time is the CLI's whole run (read .npy, project, write CSV; quality evaluated on 1 row).
A Python peer's time is its fit alone: imports, data loading and, for umap-learn, a warm-up fit
that compiles numba's JIT (both kNN paths) are done first and not counted. Trustworthiness of
every embedding is computed here the same way: sklearn.manifold.trustworthiness when N <= 10000,
else the same formula summed over `--tw-rows` evenly spaced rows against all N points
(`trustworthiness_rows`, checked equal to sklearn's on the smallest size).

Two more columns compare like with like: "fit alone" is the method by itself on both sides
(mmembed's own timing of its fit phase, from OUT.quality.json's "seconds"; the peer's timed fit),
"process" the whole process's wall time on both sides (for a Python peer: interpreter start,
imports, np.load, warm-up, fit, np.save).

Adding a peer: append a Case to CASES (name, method, a function returning the command line);
a Python peer is a snippet that fits `x` and leaves the embedding in `y` (see PY_PEERS).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, List

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# Python peers: `setup` runs untimed (imports, JIT warm-up), `fit` is timed and must set `y`.
PY_PEERS = {
    "umap-learn": {
        "method": "umap",
        "setup": (
            "import umap, numpy as _np\n"
            "_w = _np.random.default_rng(0).normal(size=(300, x.shape[1])).astype(_np.float32)\n"
            "umap.UMAP(n_neighbors=15, n_epochs=5, n_jobs=THREADS).fit_transform(_w)\n"
            "umap.UMAP(n_neighbors=15, n_epochs=5, n_jobs=THREADS,"
            " force_approximation_algorithm=True).fit_transform(_w)\n"
        ),
        "fit": "y = umap.UMAP(n_neighbors=15, min_dist=0.1, n_jobs=THREADS).fit_transform(x)\n",
    },
    # t-SNE peers at their defaults: openTSNE 1.0 (PyPI, in .venv-tsne: --python-tsne) runs
    # 250 + 500 iterations, BH below 10,000 points and FFT interpolation from 10,000; sklearn
    # 1.2 (Debian) 250 + 750 with Barnes-Hut, as mmembed's default schedule.
    "openTSNE": {
        "method": "tsne",
        "python": "python_tsne",
        "setup": "from openTSNE import TSNE\n",
        "fit": "y = TSNE(n_jobs=THREADS, random_state=0).fit(x)\n",
    },
    "sklearn TSNE": {
        "method": "tsne",
        "setup": "from sklearn.manifold import TSNE\n",
        "fit": ("y = TSNE(n_components=2, init='pca', learning_rate='auto', random_state=0,"
                " n_jobs=THREADS).fit_transform(x)\n"),
    },
    "sklearn PCA": {
        "method": "pca",
        "setup": "from sklearn.decomposition import PCA\n",
        "fit": "y = PCA(n_components=2).fit_transform(x)\n",
    },
}

PY_TEMPLATE = """
import os, time, numpy as np
THREADS = {threads}
x = np.load({data!r})
{setup}
t0 = time.perf_counter()
{fit}
t1 = time.perf_counter()
np.save({out!r}, np.asarray(y, dtype=np.float32))
print("FIT_SECONDS", t1 - t0)
"""


@dataclass
class Case:
    name: str
    method: str
    command: Callable  # (data, labels, out_npy_or_csv, args) -> (argv, env, output_path)


def mmembed_case(method, extra=()):
    def command(data, labels, out, args):
        csv = out + ".csv"
        argv = [args.mmembed, "--threads", str(args.threads), "reduce", "--method", method, data,
                "--labels", labels, "-o", csv, "--quality-rows", "1", *extra]
        return argv, dict(os.environ), csv
    return command


def python_case(peer):
    def command(data, labels, out, args):
        spec = PY_PEERS[peer]
        script = PY_TEMPLATE.format(threads=args.threads, data=data, setup=spec["setup"],
                                    fit=spec["fit"], out=out + ".npy")
        path = out + ".py"
        with open(path, "w") as f:
            f.write(script)
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            env[var] = str(args.threads)
        python = getattr(args, spec["python"]) if spec.get("python") else args.python
        return [python, path], env, out + ".npy"
    return command


CASES: List[Case] = [
    Case("mmembed umap", "umap", mmembed_case("umap")),
    Case("umap-learn", "umap", python_case("umap-learn")),
    Case("mmembed pca", "pca", mmembed_case("pca")),
    Case("sklearn PCA", "pca", python_case("sklearn PCA")),
    Case("mmembed tsne", "tsne", mmembed_case("tsne")),
    Case("mmembed tsne 750 it", "tsne", mmembed_case("tsne", ("--iterations", "500"))),
    Case("openTSNE", "tsne", python_case("openTSNE")),
    Case("sklearn TSNE", "tsne", python_case("sklearn TSNE")),
]


def trustworthiness_rows(x, y, k, rows):
    """sklearn's trustworthiness formula with the outer sum over `rows` only (all N points are
    candidates): 1 - 2/(m k (2N - 3k - 1)) sum_i sum_{j in U_k(i)} (r(i, j) - k), m = len(rows)."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    n = x.shape[0]
    xx = (x * x).sum(1)
    yy = (y * y).sum(1)
    total = 0.0
    for start in range(0, len(rows), 256):
        r = rows[start:start + 256]
        dx = xx[r, None] + xx[None, :] - 2.0 * x[r] @ x.T
        dy = yy[r, None] + yy[None, :] - 2.0 * y[r] @ y.T
        dx[np.arange(len(r)), r] = np.inf  # self excluded, as sklearn
        dy[np.arange(len(r)), r] = np.inf
        order_x = np.argsort(dx, axis=1, kind="stable")
        rank = np.empty_like(order_x)
        rank[np.arange(len(r))[:, None], order_x] = np.arange(1, n + 1)[None, :]
        nn_y = np.argpartition(dy, k, axis=1)[:, :k]
        ranks = rank[np.arange(len(r))[:, None], nn_y] - k
        total += np.sum(ranks[ranks > 0])
    m = len(rows)
    return 1.0 - total * (2.0 / (m * k * (2.0 * n - 3.0 * k - 1.0)))


def trustworthiness(x, y, k, tw_rows):
    n = x.shape[0]
    if n <= 10000:
        from sklearn.manifold import trustworthiness as sk
        return sk(x, y, n_neighbors=k), "sklearn"
    rows = np.linspace(0, n - 1, tw_rows).astype(np.int64)
    return trustworthiness_rows(x, y, k, rows), f"{tw_rows} rows"


def load_embedding(path):
    if path.endswith(".npy"):
        return np.load(path)
    y = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1), dtype=np.float64)
    return y


def run_case(case, n, data, labels, work, args):
    out = os.path.join(work, f"{case.name.replace(' ', '_')}_{n}")
    argv, env, result = case.command(data, labels, out, args)
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *argv], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{case.name} failed at N={n}")
    rss_kb = None
    for line in proc.stderr.splitlines():
        if "Maximum resident set size" in line:
            rss_kb = int(line.split(":")[1])
    fit = None
    for line in proc.stdout.splitlines():
        if line.startswith("FIT_SECONDS"):
            fit = float(line.split()[1])
    if fit is None:  # mmembed: the CLI's own timing of the method (OUT.quality.json "seconds")
        quality = os.path.splitext(result)[0] + ".quality.json"
        if os.path.exists(quality):
            with open(quality) as f:
                fit_alone = json.load(f).get("seconds", {}).get("fit")
        else:
            fit_alone = None
    else:
        fit_alone = fit
    return {"seconds": fit if fit is not None else wall, "process_seconds": wall,
            "fit_seconds": fit_alone if fit_alone is not None else float("nan"),
            "rss_mib": rss_kb / 1024 if rss_kb else float("nan"), "output": result}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mmembed", default=os.path.join(HERE, "..", "..", "build", "apps", "cli", "mmembed"))
    ap.add_argument("--python", default=sys.executable, help="Python with the peers installed")
    ap.add_argument("--python-tsne", default=os.path.join(HERE, "..", "..", ".venv-tsne", "bin", "python"),
                    help="Python with openTSNE (a venv over the system site packages)")
    ap.add_argument("--data", default=os.path.join(HERE, "data"))
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--methods", default="umap,pca")
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all of --methods)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tw-rows", type=int, default=2000)
    ap.add_argument("--out", default="")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    methods = args.methods.split(",")
    wanted = [c for c in args.cases.split(",") if c]
    cases = [c for c in CASES if c.method in methods and (not wanted or c.name in wanted)]
    load = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="mmembed-bench-reduce-") as work:
        checked = False
        for n in [int(s) for s in args.sizes.split(",")]:
            data = os.path.join(args.data, f"mixture_{n}.npy")
            labels = os.path.join(args.data, f"mixture_{n}_labels.txt")
            if not os.path.exists(data):
                raise SystemExit(f"{data} missing: run bench/reduce/gen_mixture.py first")
            x = np.load(data)
            for case in cases:
                r = run_case(case, n, data, labels, work, args)
                y = load_embedding(r["output"])
                if not checked and n <= 10000:
                    # Our row form over all rows against sklearn (float32 distances there: near-ties
                    # may rank differently, hence 1e-5).
                    a = trustworthiness_rows(x, y, 10, np.arange(n))
                    b, _ = trustworthiness(x, y, 10, args.tw_rows)
                    assert abs(a - b) < 1e-5, (a, b)
                    checked = True
                tw, how = trustworthiness(x, y, 10, args.tw_rows)
                r.update({"case": case.name, "method": case.method, "n": n, "trustworthiness": tw,
                          "tw_how": how})
                del r["output"]
                results.append(r)
                print(f"N={n:>6} {case.name:<14} {r['seconds']:9.2f} s  {r['rss_mib']:8.0f} MiB  "
                      f"T@10 {tw:.4f} ({how})", flush=True)
    lines = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; threads "
             f"{args.threads}; load average before the run {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
             f"after {os.getloadavg()[0]:.2f}.", "",
             "| N | method | tool | time (s) | ratio to mmembed | fit alone (s) | fit ratio | "
             "process (s) | peak RSS (MiB) | trustworthiness@10 |",
             "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        ours = [q for q in results if q["n"] == r["n"] and q["method"] == r["method"]
                and q["case"].startswith("mmembed")]
        ratio = r["seconds"] / ours[0]["seconds"] if ours else float("nan")
        fit_ratio = r["fit_seconds"] / ours[0]["fit_seconds"] if ours else float("nan")
        lines.append(f"| {r['n']} | {r['method']} | {r['case']} | {r['seconds']:.2f} | {ratio:.2f} | "
                     f"{r['fit_seconds']:.3f} | {fit_ratio:.2f} | {r['process_seconds']:.2f} | "
                     f"{r['rss_mib']:.0f} | {r['trustworthiness']:.4f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
