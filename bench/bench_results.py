"""Reading the results.jsonl files of bench/*/run.sh (shared by their table.py scripts).

One JSON line per benchmark process; lines with a "meta" key record the run (date, load,
commit). A cell is (model folder name, task, batch, threads, setting), where setting is
"mmembed" or the reference's "tuned" / "default"; a later line of the same cell replaces an
earlier one, so a rerun of some cells appended to the file wins.
"""
import json
import os


def setting_of(r):
    if r.get("impl") == "mmembed":
        return "mmembed"
    return r.get("setting", "default")


def read_results(path):
    """-> (cells: {(model, task, batch, threads, setting): record}, meta: [record])"""
    cells, meta = {}, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if "meta" in r:
                meta.append(r)
                continue
            model = os.path.basename(r["model"].rstrip("/"))
            cells[(model, r["task"], r["batch"], r["threads"], setting_of(r))] = r
    return cells, meta


def print_meta(meta):
    """The run records as Markdown comments (kept with the table, invisible when rendered)."""
    for m in meta:
        print(f"<!-- {m['meta']}: " + ", ".join(f"{k}={v}" for k, v in m.items() if k != "meta")
              + " -->")
