"""The committed manifest: every file of the data layout with its sha256 and size, and its source.

`python -m llmusic.data.fetch --write-manifest --dest DIR` hashes a complete copy of the data
(DIR, default the shared data folder) and writes `manifest.json.gz` next to this module from
`sources.py`; the fetcher then accepts a landed file only when its size and sha256 match.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import json
import os
from pathlib import Path

from llmusic.data.fetch.sources import GROUPS, SOURCES

MANIFEST_PATH = Path(__file__).with_name("manifest.json.gz")
WRITE_COMMAND = "python -m llmusic.data.fetch --write-manifest --dest DIR"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def matches(path: Path, sha256: str, size: int) -> bool:
    """True when `path` is a file of exactly this size and sha256 (the size is checked first: cheap)."""
    return path.is_file() and path.stat().st_size == size and sha256_file(path) == sha256


def part_of(group: dict, rel: str) -> dict | None:
    """The first part of `group` whose glob takes the file `rel` (a path inside the group folder)."""
    return next((part for part in group["parts"] if fnmatch.fnmatchcase(rel, part["files"])), None)


def group_files(root: Path) -> list[str]:
    """Every file under `root`, as sorted '/'-joined relative paths (hidden files left out)."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [(Path(folder) / f).relative_to(root).as_posix() for f in files if not f.startswith(".")]
    return sorted(found)


def build_manifest(data_dir: Path) -> dict:
    """Hash every file of every group under `data_dir`; each file must belong to one part."""
    groups = {}
    for name, group in GROUPS.items():
        root = data_dir / group["dir"]
        rels = group_files(root)
        if not rels:
            raise FileNotFoundError(f"{root}: no files; --write-manifest needs a complete copy of the data")
        orphans = [rel for rel in rels if part_of(group, rel) is None]
        if orphans:
            raise ValueError(f"{root}: {len(orphans)} files match no part in sources.py, e.g. {orphans[:3]}")
        files = {rel: [sha256_file(root / rel), (root / rel).stat().st_size] for rel in rels}
        groups[name] = {**group, "files": files}
    return {"format": 1, "written_by": WRITE_COMMAND, "sources": SOURCES, "groups": groups}


def write_manifest(manifest: dict, path: Path = MANIFEST_PATH) -> None:
    """Gzipped JSON with sorted keys and no timestamp, so the same data gives the same bytes."""
    text = json.dumps(manifest, sort_keys=True, indent=0, ensure_ascii=False).encode()
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(text)


def load_manifest(path: Path = MANIFEST_PATH) -> dict:
    with gzip.open(path, "rt") as f:
        manifest = json.load(f)
    if manifest.get("format") != 1:
        raise ValueError(f"{path}: manifest format {manifest.get('format')!r}, this code reads 1")
    return manifest
