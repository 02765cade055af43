"""Fetch the public sources into the layout the loaders read (for users with internet access).

    python -m ragdistill.data.download --root data/raw

CQA and SVAMP with the PaLM rationales come from the ``datasets.zip`` of
google-research/distilling-step-by-step; it is unpacked into ``<root>/dss``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import urllib.request
import zipfile
from pathlib import Path

DSS_ZIP_URL = "https://github.com/google-research/distilling-step-by-step/raw/main/datasets.zip"


def fetch_dss(root: Path, url: str = DSS_ZIP_URL) -> Path:
    """Download and unpack the DSS datasets into ``root/dss/{cqa,svamp,...}``."""
    target = root / "dss"
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 - fixed public URL
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    staging = root / ".dss-download"
    shutil.rmtree(staging, ignore_errors=True)
    archive.extractall(staging)
    # The zip holds a top-level ``datasets/`` folder.
    source = staging / "datasets" if (staging / "datasets").is_dir() else staging
    target.mkdir(parents=True, exist_ok=True)
    for child in source.iterdir():
        destination = target / child.name
        if destination.exists():
            shutil.rmtree(destination)
        shutil.move(str(child), destination)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="data directory to fill")
    args = parser.parse_args()
    print(f"Fetched DSS datasets into {fetch_dss(args.root)}")


if __name__ == "__main__":
    main()
