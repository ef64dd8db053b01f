"""`python -m llmusic.data.fetch` against a loopback HTTP server serving real files of ../shared/data.

The server (127.0.0.1, a thread) serves the layout file by file, and zip / tar.gz archives built
here from real files the way the upstream archives are laid out; it answers Range requests, and
can drop a connection mid-file or corrupt a body. The manifests are the committed one cut down to
the files served, so the sha256 sums checked are the real ones.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import re
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from llmusic.data.fetch.__main__ import main
from llmusic.data.fetch.derive import labels_csv
from llmusic.data.fetch.manifest import MANIFEST_PATH, load_manifest
from llmusic.data.fetch.sources import GROUPS, SOURCES

POP909_SONGS = ("001", "002")
POP909_FILES = [f"{song}/{name}" for song in POP909_SONGS
                for name in (f"{song}.mid", "human_label1.txt", "human_label2.txt", "melody.txt")]
GENRE_FILES = ["jazz/bill_evans-autumn_leaves.midi", "jazz/etta_james-at_last.mid",
               "rhythm_and_blues/kenny_wayne_sheppard-slow ride.mid"]  # a space: quoted in URLs
N_LMD = 3


class Loopback:
    """A loopback HTTP server over {path: bytes}, with Range support and faults on demand."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.drop_once: dict[str, int] = {}  # path -> byte at which the first answer stops
        self.corrupt: set[str] = set()  # paths served with one byte flipped
        self.honour_range = True  # False: answer every request with the whole file (200)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path, wanted = unquote(urlsplit(self.path).path), self.headers.get("Range")
                owner.requests.append((path, wanted))
                body = owner.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                if path in owner.corrupt:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                start = int(re.fullmatch(r"bytes=(\d+)-", wanted)[1]) if wanted and owner.honour_range else 0
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if start:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                stop = owner.drop_once.pop(path, len(body))
                self.wfile.write(body[start:stop])  # then the connection closes, short or not

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@pytest.fixture
def server():
    loopback = Loopback()
    yield loopback
    loopback.httpd.shutdown()
    loopback.httpd.server_close()


def lmd_files(shared: Path, group: str = "lmd_subset", n: int = N_LMD) -> list[str]:
    return sorted(f"midi/{p.name}" for p in (shared / group / "midi").glob("*.mid"))[:n]


def cut_manifest(tmp: Path, keep: dict[str, list[str]]) -> Path:
    """The committed manifest with only the `keep` files of these groups, written under `tmp`."""
    manifest = copy.deepcopy(load_manifest())
    manifest["groups"] = {group: {**manifest["groups"][group],
                                  "files": {rel: manifest["groups"][group]["files"][rel] for rel in rels}}
                          for group, rels in keep.items()}
    path = tmp / "manifest.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump(manifest, f)
    return path


def serve_layout(server: Loopback, shared: Path, keep: dict[str, list[str]]) -> None:
    """Every kept file at /data/<group dir>/<rel>: a mirror of the layout."""
    for group, rels in keep.items():
        for rel in rels:
            server.files[f"/data/{GROUPS[group]['dir']}/{rel}"] = (shared / GROUPS[group]["dir"] / rel).read_bytes()


def serve_archives(server: Loopback, shared: Path) -> list[str]:
    """Archives shaped like the upstream ones (a top folder, other members beside the wanted ones)."""
    def zipped(top: str, members: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr(f"{top}/README.md", b"not wanted")
            for name, data in members.items():
                zf.writestr(f"{top}/{name}", data)
        return buffer.getvalue()

    pop909 = shared / "pop909"
    server.files["/POP909-Dataset-master.zip"] = zipped("POP909-Dataset-master", {
        f"POP909/{rel}": (pop909 / rel).read_bytes() for rel in POP909_FILES if rel.endswith(".mid")})
    server.files["/hierarchical-structure-analysis-main.zip"] = zipped("hierarchical-structure-analysis-main", {
        f"POP909/{rel}": (pop909 / rel).read_bytes() for rel in POP909_FILES if rel.endswith(".txt")})
    lmd = [shared / "lmd_subset" / rel for rel in lmd_files(shared)]
    lmd += [shared / "lmd_extra" / rel for rel in lmd_files(shared, "lmd_extra", 2)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for path in lmd:
            tf.add(path, arcname=f"lmd_full/{path.name[0]}/{path.name}")
    server.files["/lmd_full.tar.gz"] = buffer.getvalue()
    server.files["/midi_genre_map.json"] = (shared / "labels" / "midi_genre_map.json").read_bytes()
    return [f"--source-url=pop909_midi={server.url}/POP909-Dataset-master.zip",
            f"--source-url=pop909_phrases={server.url}/hierarchical-structure-analysis-main.zip",
            f"--source-url=lmd_subset={server.url}/lmd_full.tar.gz",
            f"--source-url=labels={server.url}/midi_genre_map.json"]


def edit_zip(server: Loopback, path: str, edit) -> None:
    """Rebuild a served zip with each member's bytes passed through `edit(name, data)`; None drops it."""
    old, buffer = zipfile.ZipFile(io.BytesIO(server.files[path])), io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for info in old.infolist():
            data = edit(info.filename, old.read(info))
            if data is not None:
                zf.writestr(info, data)
    server.files[path] = buffer.getvalue()


def fetch(*args) -> int:
    return main([*map(str, args), "--no-progress", "--retries=2", "--backoff=0", "--timeout=10"])


def assert_landed(dest: Path, shared: Path, keep: dict[str, list[str]]) -> None:
    for group, rels in keep.items():
        for rel in rels:
            path = Path(GROUPS[group]["dir"]) / rel
            assert (dest / path).read_bytes() == (shared / path).read_bytes(), path
    assert not list(dest.rglob("*.part")), "no partial download may be left once all files are in"


def test_committed_manifest_is_the_shared_data(shared_data, capsys):
    """The manifest lists every file of the real layout with its real sum, from today's sources.py."""
    manifest = load_manifest()
    assert manifest["sources"] == SOURCES
    assert {name: {k: v for k, v in g.items() if k != "files"} for name, g in manifest["groups"].items()} == GROUPS
    counts = {name: len(g["files"]) for name, g in manifest["groups"].items()}
    assert counts == {"pop909": 909 * 4, "genre_corpus": 320, "lmd_subset": 551, "lmd_extra": 1352, "labels": 1}
    assert main(["--check", "--dest", str(shared_data), "--manifest", str(MANIFEST_PATH)]) == 0
    assert capsys.readouterr().out.count("complete") == 5


@pytest.mark.parametrize("group, order", [("lmd_subset", "sorted"), ("lmd_extra", "as_listed")])
def test_labels_csv_is_rebuilt_byte_for_byte(shared_data, tmp_path, group, order):
    md5s = sorted(p.stem for p in (shared_data / group / "midi").glob("*.mid"))
    labels_csv(shared_data / "labels" / "midi_genre_map.json", md5s, tmp_path / "labels.csv", order)
    assert (tmp_path / "labels.csv").read_bytes() == (shared_data / group / "labels.csv").read_bytes()


def test_archives_land_the_right_files(shared_data, server, tmp_path, capsys):
    keep = {"pop909": POP909_FILES, "labels": ["midi_genre_map.json"], "lmd_subset": lmd_files(shared_data),
            "lmd_extra": lmd_files(shared_data, "lmd_extra", 1)}  # the archive's other lmd_extra file: unwanted
    manifest = cut_manifest(tmp_path, keep)
    dest = tmp_path / "data"
    assert fetch("--manifest", manifest, "--dest", dest, *serve_archives(server, shared_data)) == 0
    assert_landed(dest, shared_data, keep)
    out = capsys.readouterr().out
    assert re.search(r"pop909 +8 +0 +8 ", out) and re.search(r"lmd_subset +3 +0 +3 ", out), out
    assert sorted(server.paths()) == ["/POP909-Dataset-master.zip", "/hierarchical-structure-analysis-main.zip",
                                      "/lmd_full.tar.gz", "/midi_genre_map.json"]  # once each, lmd_full for both
    assert not list((dest / ".downloads").rglob("*.*z*")), "archives are removed once unpacked"
    assert "Evaluation data for llmusic" in (dest / "README.md").read_text()


def test_a_local_archive_is_read_in_place(shared_data, server, tmp_path):
    keep = {"lmd_subset": lmd_files(shared_data), "labels": ["midi_genre_map.json"]}
    serve_archives(server, shared_data)
    archive = tmp_path / "lmd_full.tar.gz"
    archive.write_bytes(server.files["/lmd_full.tar.gz"])
    dest = tmp_path / "data"
    assert fetch("--manifest", cut_manifest(tmp_path, keep), "--dest", dest, f"--source-url=lmd_full={archive}",
                 "--what=lmd_subset", f"--source-url=labels={server.url}/midi_genre_map.json") == 0
    assert_landed(dest, shared_data, keep)
    assert archive.exists() and "/lmd_full.tar.gz" not in server.paths()


def test_a_mirror_serves_the_layout_file_by_file(shared_data, server, tmp_path):
    keep = {"genre_corpus": GENRE_FILES, "pop909": POP909_FILES[:4]}
    serve_layout(server, shared_data, keep)
    dest = tmp_path / "data"
    assert fetch("--manifest", cut_manifest(tmp_path, keep), "--dest", dest, f"--mirror={server.url}/data") == 0
    assert_landed(dest, shared_data, keep)
    assert len(server.requests) == len(GENRE_FILES) + 4


@pytest.mark.parametrize("mode", ["mirror", "archive"])
def test_a_corrupted_file_is_refused_and_removed(shared_data, server, tmp_path, capsys, mode):
    keep = {"pop909": POP909_FILES}
    if mode == "mirror":
        serve_layout(server, shared_data, keep)
        server.corrupt.add("/data/pop909/002/melody.txt")
        args = [f"--mirror={server.url}/data"]
    else:
        args = serve_archives(server, shared_data)[:2]
        edit_zip(server, "/hierarchical-structure-analysis-main.zip",  # one member's bytes changed
                 lambda name, data: data.replace(b"\n", b" \n", 1) if name.endswith("002/melody.txt") else data)
    dest = tmp_path / "data"
    assert fetch("--manifest", cut_manifest(tmp_path, keep), "--dest", dest, *args) == 1
    assert not (dest / "pop909/002/melody.txt").exists()
    assert not list(dest.rglob("*.part"))
    assert_landed(dest, shared_data, {"pop909": [rel for rel in POP909_FILES if rel != "002/melody.txt"]})
    out = capsys.readouterr().out
    assert "pop909, refused (wrong bytes, removed) (1):" in out and "pop909/002/melody.txt: got" in out
    assert re.search(r"pop909 +8 +0 +7 .* INCOMPLETE", out), out


@pytest.mark.parametrize("mode", ["mirror", "archive"])
def test_an_interrupted_download_resumes_with_a_range_request(shared_data, server, tmp_path, mode):
    keep = {"pop909": POP909_FILES[:1]}
    if mode == "mirror":
        serve_layout(server, shared_data, keep)
        path, args = "/data/pop909/001/001.mid", [f"--mirror={server.url}/data"]
    else:
        path, args = "/POP909-Dataset-master.zip", serve_archives(server, shared_data)[:1]
    half = len(server.files[path]) // 2
    server.drop_once[path] = half
    dest = tmp_path / "data"
    assert fetch("--manifest", cut_manifest(tmp_path, keep), "--dest", dest, *args) == 0
    assert server.requests == [(path, None), (path, f"bytes={half}-")]
    assert_landed(dest, shared_data, keep)


def test_a_server_that_ignores_range_sends_the_file_again(shared_data, server, tmp_path):
    keep = {"pop909": POP909_FILES[:1]}
    serve_layout(server, shared_data, keep)
    server.honour_range = False
    server.drop_once["/data/pop909/001/001.mid"] = 1000
    dest = tmp_path / "data"
    assert fetch("--manifest", cut_manifest(tmp_path, keep), "--dest", dest, f"--mirror={server.url}/data") == 0
    assert server.requests == [("/data/pop909/001/001.mid", None), ("/data/pop909/001/001.mid", "bytes=1000-")]
    assert_landed(dest, shared_data, keep)  # the 200 answer replaced the part instead of being appended


@pytest.mark.parametrize("kept", [1000, "all"])
def test_a_part_left_by_a_killed_run_is_continued(shared_data, server, tmp_path, kept):
    """A killed run leaves a `.part`: the next run asks for the rest (all of it there: 416, then anew)."""
    keep = {"labels": ["midi_genre_map.json"]}
    serve_layout(server, shared_data, keep)
    path = "/data/labels/midi_genre_map.json"
    body = server.files[path]
    kept = len(body) if kept == "all" else kept
    part = tmp_path / "data" / ".downloads" / "labels" / "midi_genre_map.json.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(body[:kept])
    dest = tmp_path / "data"
    assert fetch("--manifest", cut_manifest(tmp_path, keep), "--dest", dest, f"--mirror={server.url}/data") == 0
    expected = [(path, f"bytes={kept}-")] + ([(path, None)] if kept == len(body) else [])
    assert server.requests == expected
    assert_landed(dest, shared_data, keep)


def test_verified_files_are_not_fetched_again(shared_data, server, tmp_path, capsys):
    keep = {"genre_corpus": GENRE_FILES}
    serve_layout(server, shared_data, keep)
    manifest, dest = cut_manifest(tmp_path, keep), tmp_path / "data"
    args = ["--manifest", manifest, "--dest", dest, f"--mirror={server.url}/data"]
    assert fetch(*args) == 0
    wrong = dest / "genre_corpus" / GENRE_FILES[0]
    wrong.write_bytes(b"MThd, but not the right file")
    server.requests.clear()
    capsys.readouterr()
    assert fetch(*args) == 0
    assert server.paths() == [f"/data/genre_corpus/{GENRE_FILES[0]}"]  # only the wrong one, replaced
    assert re.search(r"genre_corpus +3 +2 +1 ", capsys.readouterr().out)
    assert_landed(dest, shared_data, keep)


def test_labels_csv_is_built_when_the_midi_files_are_in_place(shared_data, server, tmp_path):
    """lmd_subset with every MIDI file present: only the label map is fetched; labels.csv is built and verified."""
    dest = tmp_path / "data"
    for rel in load_manifest()["groups"]["lmd_subset"]["files"]:
        if rel.startswith("midi/"):
            (dest / "lmd_subset" / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / "lmd_subset" / rel).write_bytes((shared_data / "lmd_subset" / rel).read_bytes())
    serve_layout(server, shared_data, {"labels": ["midi_genre_map.json"]})
    assert fetch("--what=lmd_subset", "--dest", dest,
                 f"--source-url=labels={server.url}/data/labels/midi_genre_map.json",
                 "--source-url=lmd_full=http://127.0.0.1:9/unused.tar.gz") == 0
    assert server.paths() == ["/data/labels/midi_genre_map.json"]
    assert (dest / "lmd_subset/labels.csv").read_bytes() == (shared_data / "lmd_subset/labels.csv").read_bytes()


def test_a_file_the_archive_lacks_is_reported_missing(shared_data, server, tmp_path, capsys):
    keep = {"pop909": POP909_FILES}
    args = serve_archives(server, shared_data)[:2]
    edit_zip(server, "/hierarchical-structure-analysis-main.zip",
             lambda name, data: None if name.endswith("002/human_label2.txt") else data)
    dest = tmp_path / "data"
    assert fetch("--manifest", cut_manifest(tmp_path, keep), "--dest", dest, *args) == 1
    out = capsys.readouterr().out
    assert re.search(r"pop909 +8 +0 +7 .* 0 +1 +0  INCOMPLETE", out), out
    assert "pop909/002/human_label2.txt: no member 'POP909/002/human_label2.txt'" in out


def test_an_archive_that_is_not_one_is_removed_and_reported(shared_data, server, tmp_path, capsys):
    """A server answering 200 with an error page instead of the zip: nothing lands, the next run starts over."""
    keep = {"pop909": POP909_FILES[:1]}
    args = serve_archives(server, shared_data)[:1]
    server.files["/POP909-Dataset-master.zip"] = b"<html>rate limited</html>"
    dest = tmp_path / "data"
    assert fetch("--manifest", cut_manifest(tmp_path, keep), "--dest", dest, *args) == 1
    out = capsys.readouterr().out
    assert "pop909_midi.zip: not a readable zip archive" in out and "--source-url pop909_midi=URL" in out
    assert not (dest / ".downloads").exists() and not (dest / "pop909").exists()


def test_errors_name_the_url_and_the_file(shared_data, server, tmp_path, capsys):
    keep = {"genre_corpus": GENRE_FILES}
    serve_layout(server, shared_data, keep)
    del server.files[f"/data/genre_corpus/{GENRE_FILES[1]}"]
    dest = tmp_path / "data"
    assert fetch("--manifest", cut_manifest(tmp_path, keep), "--dest", dest, f"--mirror={server.url}/data") == 1
    out = capsys.readouterr().out
    url = f"{server.url}/data/genre_corpus/{GENRE_FILES[1]}"
    assert f"{url} (genre_corpus/{GENRE_FILES[1]}): HTTP 404" in out
    assert re.search(r"genre_corpus +3 +0 +2 .* 0 +0 +1  INCOMPLETE", out), out
    assert_landed(dest, shared_data, {"genre_corpus": [GENRE_FILES[0], GENRE_FILES[2]]})
