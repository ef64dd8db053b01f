"""`python -m llmusic.data.fetch`: download the public evaluation data, every file verified.

    python -m llmusic.data.fetch                     # all groups, into $LLMUSIC_SHARED_DATA or ../shared/data
    python -m llmusic.data.fetch --what pop909,labels --dest /data/llmusic
    python -m llmusic.data.fetch --source-url lmd_full=/data/lmd_full.tar.gz   # a copy you already have
    python -m llmusic.data.fetch --mirror https://host/llmusic-data   # any copy of the whole layout
    python -m llmusic.data.fetch --list              # groups, sizes, sources; downloads nothing
    python -m llmusic.data.fetch --check             # what is in place, what is not; downloads nothing
    python -m llmusic.data.fetch --write-manifest --dest DIR   # refresh the manifest from a full copy

Exit status 0 when every chosen group is complete and verified, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from llmusic.config import resolve_path
from llmusic.data.fetch import Fetcher, GroupReport, plan, write_readme
from llmusic.data.fetch.manifest import MANIFEST_PATH, build_manifest, load_manifest, write_manifest

SHOWN = 5  # problems listed per kind and group; the rest are counted


def default_dest() -> Path:
    return resolve_path(os.environ.get("LLMUSIC_SHARED_DATA", "../shared/data"))


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def source_urls(items: list[str], manifest: dict) -> dict[str, str]:
    """`NAME=URL` pairs -> {source: URL}; NAME is a source, or a group that has a single source."""
    urls = {}
    for item in items:
        name, sep, url = item.partition("=")
        if not sep or not url:
            raise SystemExit(f"--source-url {item!r}: expected NAME=URL")
        if name in manifest["groups"]:
            own = list(dict.fromkeys(p["source"] for p in manifest["groups"][name]["parts"] if "source" in p))
            if len(own) != 1:
                raise SystemExit(f"--source-url {name}: that group has sources {own}; name one of them")
            name = own[0]
        if name not in manifest["sources"]:
            raise SystemExit(f"--source-url {name}: no such source or group; sources: {', '.join(manifest['sources'])}")
        urls[name] = url
    return urls


def print_reports(reports: dict[str, GroupReport]) -> bool:
    """A table, then the problems by file; True when every group is complete.

    Columns: files the group has; already there with the right bytes; fetched and verified now
    (and their bytes); refused (wrong bytes, removed); missing from their archive; not fetched
    (a download failed, or with --check: not there).
    """
    print(f"\n{'group':<13} {'files':>6} {'already there':>14} {'fetched':>8} {'bytes':>9} "
          f"{'refused':>8} {'missing':>8} {'not fetched':>12}  status")
    for name, r in reports.items():
        not_fetched = r.expected - r.present - r.landed - len(r.refused) - len(r.missing)
        print(f"{name:<13} {r.expected:>6} {r.present:>14} {r.landed:>8} {human(r.bytes):>9} {len(r.refused):>8} "
              f"{len(r.missing):>8} {not_fetched:>12}  {'complete' if r.complete else 'INCOMPLETE'}")
    for name, r in reports.items():
        for kind, lines in (("refused (wrong bytes, removed)", r.refused), ("missing from their archive", r.missing),
                            ("download errors", r.errors)):
            if lines:
                print(f"{name}, {kind} ({len(lines)}):")
                print("".join(f"  {line}\n" for line in lines[:SHOWN]), end="")
                if len(lines) > SHOWN:
                    print(f"  ... and {len(lines) - SHOWN} more")
    return all(r.complete for r in reports.values())


def print_list(manifest: dict) -> None:
    for name, spec in manifest["groups"].items():
        size = sum(size for _, size in spec["files"].values())
        print(f"{name}: {len(spec['files'])} files, {human(size)} in {spec['dir']}/ ({spec['license']})\n"
              f"    {spec['about']}")
        for part in spec["parts"]:
            if "source" in part:
                source = manifest["sources"][part["source"]]
                print(f"    {part['files']}: {part['source']}, {source['url']} ({source['note']})")
            else:
                print(f"    {part['files']}: built here ({part['derive']}) from {part['needs']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmusic.data.fetch", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--what", help="comma-separated groups (default: all)")
    parser.add_argument("--dest", type=Path, help="data folder (default: $LLMUSIC_SHARED_DATA or ../shared/data)")
    parser.add_argument("--source-url", action="append", default=[], metavar="NAME=URL",
                        help="fetch a source (or a group's single source) from URL or a local file instead")
    parser.add_argument("--mirror", help="base URL or folder holding the whole layout: every file from there")
    parser.add_argument("--check", action="store_true", help="verify what is in place; download nothing")
    parser.add_argument("--list", action="store_true", help="list the groups and their sources")
    parser.add_argument("--keep-downloads", action="store_true", help="keep archives under DEST/.downloads")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a retry")
    parser.add_argument("--retries", type=int, default=5, help="retries per download")
    parser.add_argument("--backoff", type=float, default=2.0, help="first wait before a retry, doubled each time")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--manifest", type=Path, default=MANIFEST_PATH, help="manifest to read or write")
    parser.add_argument("--write-manifest", action="store_true",
                        help="hash a complete copy of the data at --dest into the manifest")
    args = parser.parse_args(argv)
    dest = (args.dest or default_dest()).expanduser().resolve()

    if args.write_manifest:
        manifest = build_manifest(dest)
        write_manifest(manifest, args.manifest)
        total = sum(len(g["files"]) for g in manifest["groups"].values())
        print(f"wrote {args.manifest} ({args.manifest.stat().st_size} bytes): {total} files from {dest}")
        return 0
    manifest = load_manifest(args.manifest)
    if args.list:
        print_list(manifest)
        return 0
    groups = args.what.split(",") if args.what else list(manifest["groups"])
    unknown = [g for g in groups if g not in manifest["groups"]]
    if unknown:
        raise SystemExit(f"--what: unknown groups {unknown}; groups: {', '.join(manifest['groups'])}")
    if args.check:
        reports, _ = plan(manifest, dest, groups)
        print(f"checked {dest} against the manifest (nothing downloaded)")
        return 0 if print_reports(reports) else 1
    print(f"fetching {', '.join(groups)} into {dest}")
    fetcher = Fetcher(manifest, dest, source_urls=source_urls(args.source_url, manifest), mirror=args.mirror,
                      keep_downloads=args.keep_downloads, timeout=args.timeout, retries=args.retries,
                      backoff=args.backoff, progress=not args.no_progress)
    reports = fetcher.run(groups)
    write_readme(dest, manifest)
    return 0 if print_reports(reports) else 1


if __name__ == "__main__":
    sys.exit(main())
