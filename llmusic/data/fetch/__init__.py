"""Fetch the public evaluation data into the layout the configs read, every file verified.

`python -m llmusic.data.fetch` (see `__main__.py` and docs/data.md): for each group (pop909,
genre_corpus, lmd_subset, lmd_extra, labels) the committed manifest lists every file with its
sha256 and size and says where it comes from. A file already in place with the right bytes is
kept; the others are downloaded (an archive once for all the files it carries, a `.part` resumed
with HTTP Range), checked, and moved into place only when they match. A file with the wrong bytes
is removed and reported, never left in the layout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from tqdm import tqdm

from llmusic.data.fetch.archive import extract
from llmusic.data.fetch.derive import labels_csv
from llmusic.data.fetch.download import FetchError, download, local_path
from llmusic.data.fetch.manifest import matches, part_of, sha256_file

DOWNLOADS = ".downloads"  # under the destination: archives and `.part` files while they arrive


@dataclass
class GroupReport:
    """What one group's files are after a run; `complete` when every file is there, verified."""

    expected: int = 0
    present: int = 0  # there before the run, right bytes: not fetched again
    landed: int = 0  # fetched by this run and verified
    bytes: int = 0  # size of the landed files
    refused: list[str] = field(default_factory=list)  # fetched with wrong bytes: removed
    missing: list[str] = field(default_factory=list)  # not found in their archive
    errors: list[str] = field(default_factory=list)  # downloads that failed, naming URL and file

    @property
    def complete(self) -> bool:
        return self.present + self.landed == self.expected


@dataclass
class Job:
    """One file of the layout that must be fetched."""

    group: str
    rel: str  # path inside the group folder
    target: Path
    sha256: str
    size: int
    part: dict  # the part of sources.py it belongs to

    @property
    def label(self) -> str:
        return f"{self.group}/{self.rel}"

    def tmp(self, dest: Path) -> Path:
        path = dest / DOWNLOADS / self.group / (self.rel + ".part")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def with_needed_groups(manifest: dict, groups: list[str], log=print) -> list[str]:
    """`groups`, after the groups their derived files are built from (labels.csv needs the label map)."""
    needs = {g: [p["needs"] for p in manifest["groups"][g]["parts"] if "needs" in p] for g in groups}
    needed = list(dict.fromkeys(n for ns in needs.values() for n in ns))
    for name in needed:
        if name not in groups:
            log(f"also fetching {name}: files of {', '.join(g for g in groups if name in needs[g])} are built from it")
    return list(dict.fromkeys([*needed, *groups]))


def plan(manifest: dict, dest: Path, groups: list[str]) -> tuple[dict[str, GroupReport], list[Job]]:
    """Check what is in place; returns the reports so far and the files still to fetch."""
    reports, jobs = {}, []
    for name in groups:
        spec, report = manifest["groups"][name], GroupReport()
        reports[name] = report
        for rel, (sha256, size) in spec["files"].items():
            target = dest / spec["dir"] / rel
            report.expected += 1
            if matches(target, sha256, size):
                report.present += 1
            else:
                jobs.append(Job(name, rel, target, sha256, size, part_of(spec, rel)))
    return reports, jobs


def remove_empty_folders(root: Path) -> None:
    """Leave no empty tree of `.part` folders behind (kept parts and archives keep theirs)."""
    for folder, _, _ in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        if not os.listdir(folder):
            os.rmdir(folder)


def land(job: Job, tmp: Path, report: GroupReport) -> None:
    """Move a fetched file into place when its size and sha256 match; otherwise remove and report it."""
    size = tmp.stat().st_size
    digest = sha256_file(tmp)
    if size == job.size and digest == job.sha256:
        job.target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, job.target)
        report.landed += 1
        report.bytes += size
    else:
        tmp.unlink()
        report.refused.append(f"{job.label}: got {size} bytes, sha256 {digest[:16]}..., "
                              f"the manifest wants {job.size} bytes, {job.sha256[:16]}...")


class Fetcher:
    """One run: fetches the planned jobs source by source and fills in the group reports."""

    def __init__(self, manifest: dict, dest: Path, *, source_urls: dict[str, str] | None = None,
                 mirror: str | None = None, keep_downloads: bool = False, timeout: float = 60.0,
                 retries: int = 5, backoff: float = 2.0, progress: bool = True, log=print):
        self.manifest, self.dest, self.mirror = manifest, dest, mirror
        self.source_urls = source_urls or {}
        self.keep_downloads, self.progress, self.log = keep_downloads, progress, log
        self.http = {"timeout": timeout, "retries": retries, "backoff": backoff}

    def run(self, groups: list[str]) -> dict[str, GroupReport]:
        groups = with_needed_groups(self.manifest, groups, self.log)
        self.reports, jobs = plan(self.manifest, self.dest, groups)
        by_source: dict[str, list[Job]] = {}
        for job in jobs:
            key = "derive" if "derive" in job.part else "mirror" if self.mirror else job.part["source"]
            by_source.setdefault(key, []).append(job)
        for key in sorted(by_source, key=lambda k: k == "derive"):  # derived files last: they need the rest
            if key == "derive":
                self.derive(by_source[key])
            elif key == "mirror":
                self.files(by_source[key], "mirror", self.mirror_url)
            else:
                self.source(key, by_source[key])
        remove_empty_folders(self.dest / DOWNLOADS)
        return self.reports

    def source(self, name: str, jobs: list[Job]) -> None:
        source = self.manifest["sources"][name]
        url = self.source_urls.get(name, source["url"])
        given = " (given with --source-url)" if name in self.source_urls else f"\n    {source['note']}"
        self.log(f"{name}: {url}{given}")
        try:
            if source["format"] == "file":
                self.files(jobs, name, lambda job: url)
            else:
                self.archive(name, source, url, jobs)
        except FetchError as e:
            for group in dict.fromkeys(job.group for job in jobs):
                self.reports[group].errors.append(f"{e} (--source-url {name}=URL to fetch it from elsewhere)")

    def mirror_url(self, job: Job) -> str:
        rel = f"{self.manifest['groups'][job.group]['dir']}/{job.rel}"
        if local_path(self.mirror) is not None:
            return str(Path(self.mirror) / rel)
        return f"{self.mirror.rstrip('/')}/{quote(rel)}"

    def files(self, jobs: list[Job], name: str, url_of) -> None:
        """One download per file (a single-file source, or every file from a mirror of the layout)."""
        with tqdm(total=sum(j.size for j in jobs), unit="B", unit_scale=True, desc=name,
                  disable=not self.progress) as bar:
            for job in jobs:
                tmp = job.tmp(self.dest)
                try:
                    download(url_of(job), tmp, bar=bar, label=job.label, **self.http)
                except FetchError as e:
                    self.reports[job.group].errors.append(str(e))
                    continue
                land(job, tmp, self.reports[job.group])

    def archive(self, name: str, source: dict, url: str, jobs: list[Job]) -> None:
        """Download the archive once (unless `url` is a local file), then land the members the jobs want."""
        archive = local_path(url)
        downloaded = archive is None
        if not downloaded and not archive.is_file():
            raise FetchError(f"{url}: no such file")
        if downloaded:
            archive = self.dest / DOWNLOADS / f"{name}.{source['format']}"
            if not archive.exists():
                self.fetch_archive(name, source, url, archive)
        wanted = {}
        for job in jobs:
            rel = PurePosixPath(job.rel)
            wanted[job.part["member"].format(rel=job.rel, name=rel.name, dir=rel.parent.as_posix())] = job
        tmps = {member: job.tmp(self.dest) for member, job in wanted.items()}
        try:
            found = extract(archive, source["format"], source["strip"], tmps)
        except FetchError:
            for tmp in tmps.values():
                tmp.unlink(missing_ok=True)
            if downloaded:  # a damaged download (or an error page): the next run fetches it anew
                archive.unlink()
            raise
        for member, job in wanted.items():
            if member in found:
                land(job, tmps[member], self.reports[job.group])
            else:
                self.reports[job.group].missing.append(f"{job.label}: no member {member!r} in {url}")
        if downloaded and not self.keep_downloads:
            archive.unlink()

    def fetch_archive(self, name: str, source: dict, url: str, archive: Path) -> None:
        part = archive.with_name(archive.name + ".part")
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tqdm(unit="B", unit_scale=True, desc=name, disable=not self.progress) as bar:
            download(url, part, bar=bar, label=archive.name, **self.http)
        if source["sha256"] is None:
            self.log(f"    {name}: the archive's own sha256 is not known; each file taken from it is verified")
        elif sha256_file(part) != source["sha256"]:
            part.unlink()
            raise FetchError(f"{url} ({archive.name}): sha256 differs from the manifest's; removed")
        os.replace(part, archive)

    def derive(self, jobs: list[Job]) -> None:
        for job in jobs:
            needs = self.manifest["groups"][job.part["needs"]]
            (label_map,) = [self.dest / needs["dir"] / rel for rel in needs["files"]]
            if not label_map.is_file():
                self.reports[job.group].errors.append(f"{job.label}: built from {label_map}, which is missing")
                continue
            spec = self.manifest["groups"][job.group]
            md5s = sorted(PurePosixPath(rel).stem for rel in spec["files"] if fnmatchcase(rel, job.part["rows"]))
            tmp = job.tmp(self.dest)
            labels_csv(label_map, md5s, tmp, job.part["order"])
            land(job, tmp, self.reports[job.group])


README_TITLE = "# Evaluation data for llmusic, fetched"


def write_readme(dest: Path, manifest: dict) -> None:
    """README.md of a fetched folder: the groups complete there, what they are and whence.

    Rewritten after each run; a README.md someone else wrote is left alone.
    """
    path = dest / "README.md"
    if path.exists() and not path.read_text().startswith(README_TITLE):
        return
    reports, _ = plan(manifest, dest, list(manifest["groups"]))
    complete = [name for name, report in reports.items() if report.complete]
    if not complete:
        return
    lines = [README_TITLE, "",
             "By `python -m llmusic.data.fetch`: every file matches the sha256 of the committed manifest",
             "(llmusic/data/fetch/manifest.json.gz). See docs/data.md.", "",
             "| folder | what | files | license | from |", "| --- | --- | --- | --- | --- |"]
    for name in complete:
        spec = manifest["groups"][name]
        origin = ", ".join(manifest["sources"][p["source"]]["url"] if "source" in p else f"built here ({p['derive']})"
                           for p in spec["parts"])
        lines.append(f"| `{spec['dir']}/` | {spec['about']} | {len(spec['files'])} | {spec['license']} | {origin} |")
    path.write_text("\n".join(lines) + "\n")
