"""Pin a dataset: write agentsim/data/manifests/<name>.json (commit, SHA-256 and size of every file the dataset
takes) from a trusted local copy of the repository at that commit, e.g. a `git clone` checked out at it or the
folder an `agentsim data fetch NAME --commit SHA --unverified` installed.

    python scripts/pin_dataset.py oasis --commit 0123...abcd --from ~/src/oasis
    python scripts/pin_dataset.py oasis --commit 0123...abcd --from "$(agentsim data path oasis)"

After pinning, `agentsim data fetch NAME` downloads that commit and checks every file against the manifest.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from agentsim.data.sources import build_manifest, get_dataset

MANIFESTS = Path(__file__).resolve().parents[1] / "agentsim" / "data" / "manifests"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("--commit", required=True, help="the 40-hex-digit commit the copy is of")
    ap.add_argument("--from", dest="root", required=True, type=Path, help="the copy's root folder (the repository's root)")
    ap.add_argument("--out", type=Path, default=None, help="write here instead of the package's manifest")
    args = ap.parse_args(argv)
    if not re.fullmatch(r"[0-9a-f]{40}", args.commit):
        ap.error(f"--commit {args.commit!r}: expected 40 hex digits")
    ds = get_dataset(args.name)
    manifest = build_manifest(ds, args.root.expanduser(), commit=args.commit)
    if not manifest["files"]:
        ap.error(f"{args.root} holds none of the files {args.name} takes ({', '.join(ds.include)})")
    out = args.out or MANIFESTS / f"{args.name}.json"
    out.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{out}: {len(manifest['files'])} files of {ds.repository}@{args.commit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
