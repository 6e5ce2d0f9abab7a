"""Entry point of the reference generators (run through scripts/reference/generate).

usage: main.py OUT_DIR [--only images,preprocess,tokenizers,models,probe]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Manifest, versions, write_json  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--sources", required=True, help="directory with the fetched vocabulary files")
    ap.add_argument("--only", default="images,preprocess,tokenizers,models,probe")
    ap.add_argument("--toys", help="data folder holding the trained toy models (models/toy-*) and toy-scenes/, "
                    "written by train_toy.py: their goldens are made too")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    import transformers

    transformers.logging.set_verbosity_error()
    torch.use_deterministic_algorithms(True)

    man = Manifest(out)
    header = {
        "format": "mmembed-reference-manifest",
        "format_version": 1,
        "regenerate_with": "scripts/reference/generate",
        "versions": versions(),
    }

    import gen_images

    images = gen_images.build(out)
    man.extra["images"] = images
    if "preprocess" in parts:
        import gen_preprocess

        man.extra["preprocess"] = gen_preprocess.build(out, man, images)
    if "tokenizers" in parts:
        import gen_tokenizers

        man.extra["tokenizers"] = gen_tokenizers.build(out, man, args.sources)
    if "models" in parts:
        import gen_models

        man.extra["models"] = gen_models.build(out, man, args.sources, args.toys and os.path.abspath(args.toys))
    if "probe" in parts:
        import probe

        write_json(os.path.join(out, "reference_probe.json"), probe.build(out))
    man.write("manifest.json", header)


if __name__ == "__main__":
    main()
