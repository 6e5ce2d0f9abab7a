#!/usr/bin/env python3
"""Makes tests/data/hub/py_cache: a Hugging Face cache written by huggingface_hub itself.

Runs tests/support/fake_hub.py serving tests/data/hub/repo-tiny as "org/tiny", then calls
huggingface_hub.hf_hub_download (real library code, HF_ENDPOINT pointed at the fake server) for
the files of that repo and one missing file, so the cache holds blobs/, refs/main, snapshots/
symlinks and .no_exist/ exactly as Python writes them. The C++ tests (tests/unit/hub) check
that mmembed reads this cache offline and reuses it online without downloading.

With --check-ours DIR it instead verifies, with huggingface_hub in offline mode, that a cache
written by mmembed under DIR (models--org--tiny) is readable by Python.

    .venv-ref/bin/python scripts/reference/gen_hub_cache.py     # needs huggingface_hub
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO_DIR = os.path.join(ROOT, "tests", "data", "hub", "repo-tiny")
OUT = os.path.join(ROOT, "tests", "data", "hub", "py_cache")
FILES = ["config.json", "preprocessor_config.json", "tokenizer.json", "model.safetensors"]


def start_server(tmp):
    port_file = os.path.join(tmp, "port")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "support", "fake_hub.py"),
                             "--port-file", port_file, "--repo", "org/tiny=" + REPO_DIR])
    for _ in range(100):
        if os.path.exists(port_file):
            return proc, int(open(port_file).read())
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("fake_hub.py did not start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-ours")
    args = ap.parse_args()
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    os.environ.pop("HF_TOKEN", None)
    if args.check_ours:
        os.environ["HF_HUB_OFFLINE"] = "1"  # no server needed: everything must come from the cache
        import huggingface_hub
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
        from huggingface_hub.file_download import _CACHED_NO_EXIST
        for f in FILES:
            p = hf_hub_download("org/tiny", f, cache_dir=args.check_ours)
            assert open(p, "rb").read() == open(os.path.join(REPO_DIR, f), "rb").read(), f
        assert try_to_load_from_cache("org/tiny", "vocab.txt", cache_dir=args.check_ours) is _CACHED_NO_EXIST
        print("huggingface_hub %s read mmembed's cache offline: %d files ok" %
              (huggingface_hub.__version__, len(FILES)))
        return
    tmp = tempfile.mkdtemp()
    proc, port = start_server(tmp)
    try:
        os.environ["HF_ENDPOINT"] = "http://127.0.0.1:%d" % port
        import huggingface_hub
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
        from huggingface_hub.file_download import _CACHED_NO_EXIST
        cache = os.path.join(tmp, "cache")
        for f in FILES:
            hf_hub_download("org/tiny", f, cache_dir=cache)
        try:
            hf_hub_download("org/tiny", "vocab.txt", cache_dir=cache)
        except huggingface_hub.utils.EntryNotFoundError:
            pass
        assert try_to_load_from_cache("org/tiny", "vocab.txt", cache_dir=cache) is _CACHED_NO_EXIST
        if os.path.exists(OUT):
            shutil.rmtree(OUT)
        os.makedirs(OUT)
        shutil.copytree(os.path.join(cache, "models--org--tiny"), os.path.join(OUT, "models--org--tiny"),
                        symlinks=True)
        with open(os.path.join(OUT, "GENERATED_BY"), "w") as f:
            f.write("huggingface_hub %s hf_hub_download against tests/support/fake_hub.py "
                    "(scripts/reference/gen_hub_cache.py)\n" % huggingface_hub.__version__)
        print("wrote", OUT)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
