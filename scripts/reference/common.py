"""Shared helpers for the reference generators: deterministic file writing and the manifest.

Every array lands in a safetensors file (optionally gzip-compressed with mtime 0 and no stored
file name, so the bytes are reproducible) and gets one entry in the global manifest.
"""
import gzip
import hashlib
import io
import json
import os
import zlib

import numpy as np
from safetensors.numpy import save as st_save

SEED = 20240611

_DTYPES = {
    np.dtype("float32"): "F32",
    np.dtype("float64"): "F64",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("uint8"): "U8",
    np.dtype("uint16"): "U16",
}


def write_bytes(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def gzip_bytes(data):
    buf = io.BytesIO()
    # mtime=0 and filename="" keep the gzip header reproducible.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as g:
        g.write(data)
    return buf.getvalue()


def dump_json(obj):
    """Stable JSON text: sorted keys, 2-space indent, trailing newline.

    Floats are written with Python's repr (shortest round-trip), which is deterministic.
    """
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_json(path, obj):
    write_bytes(path, dump_json(obj))


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def crc32(data):
    return zlib.crc32(data) & 0xFFFFFFFF


class Manifest:
    """Collects array entries; `add_file` writes one safetensors file holding several arrays."""

    def __init__(self, root):
        self.root = root
        self.arrays = []
        self.extra = {}

    def add_file(self, relpath, arrays, entries_meta, compress=False):
        """arrays: dict tensor-name -> numpy array; entries_meta: dict tensor-name -> metadata dict.

        relpath must end with .safetensors; with compress=True '.gz' is appended.
        """
        clean = {}
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
            if arr.dtype not in _DTYPES:
                raise TypeError(f"{name}: unsupported dtype {arr.dtype}")
            clean[name] = arr
        data = st_save(clean, metadata={"format": "mmembed-golden"})
        if compress:
            relpath = relpath + ".gz"
            payload = gzip_bytes(data)
        else:
            payload = data
        write_bytes(os.path.join(self.root, relpath), payload)
        for name in sorted(clean):
            arr = clean[name]
            meta = dict(entries_meta.get(name, {}))
            entry = {
                "name": name,
                "file": relpath,
                "compression": "gzip" if compress else "none",
                "tensor": name,
                "dtype": _DTYPES[arr.dtype],
                "shape": list(arr.shape),
                "crc32": crc32(arr.astype(arr.dtype.newbyteorder("<")).tobytes()),
            }
            entry.update(meta)
            self.arrays.append(entry)
        return relpath

    def add_checksum(self, name, arr, meta):
        """An array that is not stored: only dtype, shape and checksums of its raw little-endian C-order bytes."""
        arr = np.ascontiguousarray(arr)
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        entry = {"name": name, "file": None, "compression": None, "tensor": None, "dtype": _DTYPES[arr.dtype],
                 "shape": list(arr.shape), "crc32": crc32(raw), "sha256": sha256_hex(raw)}
        entry.update(meta)
        self.arrays.append(entry)

    def write(self, relpath, header):
        obj = dict(header)
        obj.update(self.extra)
        obj["arrays"] = sorted(self.arrays, key=lambda e: e["name"])
        write_json(os.path.join(self.root, relpath), obj)


def transformers_major():
    import transformers

    return int(transformers.__version__.split(".")[0])


def tokenizer_files(vocab_file, merges_file=None):
    """Keyword arguments that give a tokenizer class its vocabulary files. transformers 4 takes vocab_file /
    merges_file; transformers 5 takes vocab / merges (a path or the contents) and silently ignores vocab_file,
    which gives a tokenizer with only its special tokens."""
    if transformers_major() >= 5:
        kw = {"vocab": vocab_file}
        if merges_file is not None:
            kw["merges"] = merges_file
        return kw
    kw = {"vocab_file": vocab_file}
    if merges_file is not None:
        kw["merges_file"] = merges_file
    return kw


def versions():
    import PIL
    import numpy
    import safetensors
    import tokenizers
    import torch
    import transformers
    from PIL import features

    v = {
        "python": "%d.%d.%d" % __import__("sys").version_info[:3],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": numpy.__version__,
        "Pillow": PIL.__version__,
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "zlib": features.version("zlib"),
        "webp": features.version("webp"),
    }
    return v
