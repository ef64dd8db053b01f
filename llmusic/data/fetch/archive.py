"""Copy chosen members out of a zip or tar.gz archive, without unpacking the rest."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path

from llmusic.data.fetch.download import FetchError


def stripped(name: str, strip: int) -> str | None:
    """A member name without its first `strip` folders (None when it has no more than that)."""
    parts = name.strip("/").split("/")
    return "/".join(parts[strip:]) if len(parts) > strip else None


def extract(archive: Path, fmt: str, strip: int, wanted: dict[str, Path]) -> set[str]:
    """Write each wanted member (its name after `strip`) to its path; returns the names found.

    A tar.gz is read as a stream and left as soon as every wanted member is out (the Lakh archive
    holds 176,581 files; most runs want a few thousand). An unreadable archive is a FetchError.
    """
    found: set[str] = set()
    try:
        if fmt == "zip":
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    name = stripped(info.filename, strip)
                    if name in wanted and not info.is_dir():
                        with zf.open(info) as src, open(wanted[name], "wb") as out:
                            shutil.copyfileobj(src, out)
                        found.add(name)
        elif fmt == "tar.gz":
            with tarfile.open(archive, "r|gz") as tf:
                for member in tf:
                    name = stripped(member.name, strip)
                    if name in wanted and member.isfile():
                        with tf.extractfile(member) as src, open(wanted[name], "wb") as out:
                            shutil.copyfileobj(src, out)
                        found.add(name)
                        if len(found) == len(wanted):
                            break
        else:
            raise FetchError(f"{archive}: unknown archive format {fmt!r} (zip or tar.gz)")
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError) as e:
        raise FetchError(f"{archive}: not a readable {fmt} archive ({e})") from e
    return found
