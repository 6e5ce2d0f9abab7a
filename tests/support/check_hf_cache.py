#!/usr/bin/env python3
"""huggingface_hub reads a cache that `mmembed models import` wrote, and agrees with
`mmembed models list --json` about it.

    check_hf_cache.py MMEMBED CACHE REPO_ID=SOURCE_DIR[@REVISION] ...

For the whole cache: huggingface_hub.scan_cache_dir(CACHE) must report the same repositories
(id, type, path, size on disk, number of files, refs, last accessed / modified), the same
revisions (commit, refs, size, snapshot path, last modified) and the same files (path in the
snapshot, size, blob path) as `MMEMBED models list --json --cache-dir CACHE`, with no warnings.
For each REPO_ID=SOURCE_DIR: snapshot_download(REPO_ID, revision, local_files_only=True) must
return that repository's snapshot for the revision, holding exactly SOURCE_DIR's files, byte for
byte, and hf_hub_download(..., local_files_only=True) must return each file from it.

Exit status: 0 when everything agrees; 1 with the differences listed; 77 when huggingface_hub
cannot be imported (the caller skips). Run by models_cli_tests (tests/unit/hub).
"""

import json
import os
import subprocess
import sys


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    mmembed, cache, specs = argv[0], argv[1], argv[2:]
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ.pop("HF_TOKEN", None)
    try:
        import huggingface_hub
        from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download
    except ImportError as e:
        print("huggingface_hub is not installed (%s)" % e)
        return 77

    problems = []

    def expect(cond, what):
        if not cond:
            problems.append(what)

    # mmembed's view first: nothing below reads a blob, so access times stay as they are.
    ours = json.loads(subprocess.run([mmembed, "models", "list", "--json", "--cache-dir", cache],
                                     check=True, stdout=subprocess.PIPE).stdout)
    theirs = scan_cache_dir(cache)
    expect(not theirs.warnings, "huggingface_hub warnings: %s" % [str(w) for w in theirs.warnings])
    expect(not ours["warnings"], "mmembed warnings: %s" % ours["warnings"])
    expect(ours["size_on_disk"] == theirs.size_on_disk,
           "total size: mmembed %s, huggingface_hub %s" % (ours["size_on_disk"], theirs.size_on_disk))
    py_repos = {r.repo_id: r for r in theirs.repos}
    our_repos = {r["repo_id"]: r for r in ours["repos"]}
    expect(sorted(py_repos) == sorted(our_repos),
           "repositories: mmembed %s, huggingface_hub %s" % (sorted(our_repos), sorted(py_repos)))
    files_compared = 0
    for repo_id in sorted(set(py_repos) & set(our_repos)):
        p, o = py_repos[repo_id], our_repos[repo_id]
        for field, theirs_value in (("repo_type", p.repo_type), ("repo_path", str(p.repo_path)),
                                    ("size_on_disk", p.size_on_disk), ("nb_files", p.nb_files),
                                    ("refs", sorted(p.refs))):
            expect(o[field] == theirs_value,
                   "%s %s: mmembed %r, huggingface_hub %r" % (repo_id, field, o[field], theirs_value))
        for field, theirs_value in (("last_accessed", p.last_accessed),
                                    ("last_modified", p.last_modified)):
            expect(abs(o[field] - theirs_value) < 1e-3,
                   "%s %s: mmembed %r, huggingface_hub %r" % (repo_id, field, o[field], theirs_value))
        py_revs = {r.commit_hash: r for r in p.revisions}
        our_revs = {r["commit_hash"]: r for r in o["revisions"]}
        expect(sorted(py_revs) == sorted(our_revs),
               "%s revisions: mmembed %s, huggingface_hub %s" % (repo_id, sorted(our_revs), sorted(py_revs)))
        for commit in sorted(set(py_revs) & set(our_revs)):
            pr, orv = py_revs[commit], our_revs[commit]
            where = "%s@%s" % (repo_id, commit[:8])
            for field, theirs_value in (("refs", sorted(pr.refs)), ("size_on_disk", pr.size_on_disk),
                                        ("nb_files", pr.nb_files),
                                        ("snapshot_path", str(pr.snapshot_path))):
                expect(orv[field] == theirs_value,
                       "%s %s: mmembed %r, huggingface_hub %r" % (where, field, orv[field], theirs_value))
            expect(abs(orv["last_modified"] - pr.last_modified) < 1e-3,
                   "%s last_modified: mmembed %r, huggingface_hub %r" % (where, orv["last_modified"], pr.last_modified))
            py_files = {os.path.relpath(f.file_path, pr.snapshot_path): (f.size_on_disk, str(f.blob_path))
                        for f in pr.files}
            our_files = {f["file_name"]: (f["size_on_disk"], f["blob_path"]) for f in orv["files"]}
            expect(py_files == our_files,
                   "%s files differ:\n  mmembed %s\n  huggingface_hub %s" % (where, our_files, py_files))
            files_compared += len(py_files)

    # Loading through the cache, as transformers and sentence-transformers do.
    loaded = 0
    for spec in specs:
        repo_id, _, rest = spec.partition("=")
        source, _, revision = rest.partition("@")
        revision = revision or "main"
        want = {}
        for root, dirs, names in os.walk(source):
            dirs[:] = [d for d in dirs if d != ".git"]
            for n in names:
                full = os.path.join(root, n)
                want[os.path.relpath(full, source)] = open(full, "rb").read()
        try:
            folder = snapshot_download(repo_id, revision=revision, cache_dir=cache,
                                       local_files_only=True)
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            problems.append("snapshot_download(%s, %s): %s: %s" % (repo_id, revision, type(e).__name__, e))
            continue
        commit = os.path.basename(folder)
        expected_folder = os.path.join(our_repos.get(repo_id, {}).get("repo_path", "?"), "snapshots", commit)
        expect(folder == expected_folder, "%s: snapshot_download gave %s, expected %s" % (repo_id, folder, expected_folder))
        got = {}
        for root, _, names in os.walk(folder):
            for n in names:
                full = os.path.join(root, n)
                got[os.path.relpath(full, folder)] = open(full, "rb").read()
        expect(sorted(got) == sorted(want),
               "%s@%s: files %s, the folder has %s" % (repo_id, revision, sorted(got), sorted(want)))
        for name, data in sorted(want.items()):
            path = hf_hub_download(repo_id, name, revision=revision, cache_dir=cache,
                                   local_files_only=True)
            expect(path == os.path.join(folder, name), "%s: hf_hub_download(%s) gave %s" % (repo_id, name, path))
            expect(open(path, "rb").read() == data, "%s: %s differs from the source" % (repo_id, name))
            loaded += 1

    if problems:
        print("huggingface_hub %s disagrees with mmembed:" % huggingface_hub.__version__)
        for p in problems:
            print("  " + p)
        return 1
    print("huggingface_hub %s agrees with mmembed models list: %d repos, %d files listed; "
          "%d files loaded offline" % (huggingface_hub.__version__, len(py_repos), files_compared, loaded))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
