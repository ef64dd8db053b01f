"""Where each group of the evaluation data comes from (the input of `--write-manifest`).

A *source* is one download: a zip / tar.gz archive (`strip` leading folders removed from its
member names, as `tar --strip-components` does) or a single file. A *group* is one folder of the
data layout (`$LLMUSIC_SHARED_DATA/<dir>`); each of its *parts* says which of its files (a glob on
the path inside the group folder) come from which source, under which member name. The member
template sees `rel` (the path inside the group folder), `name` (its file name) and `dir` (its
folder). A part with `derive` is built here instead of downloaded, from the group it `needs`
(`labels_csv`: a row per file that `rows` matches, named by its md5).

No URL below has been tried from this project (nothing here reaches the internet). Each says who
names it; the sha256 sums of the landed files are what holds a download to the files this project
tests with, so a changed or wrong upstream file is refused, never used.
"""

from __future__ import annotations



def github_archive(repo: str, ref: str, note: str) -> dict:
    """GitHub's zip of a repository at `ref`: one top folder (<name>-<ref>/), stripped."""
    return {"url": f"https://github.com/{repo}/archive/{ref}.zip", "format": "zip", "strip": 1, "sha256": None,
            "note": f"{note}; not tested from here"}


SOURCES: dict[str, dict] = {
    "pop909_midi": github_archive("music-x-lab/POP909-Dataset", "refs/heads/master",
                                  "the POP909 repository (the URL other projects' download scripts use)"),
    # Links to this repository name both a `main` and a `master` branch: HEAD is whichever is the default.
    "pop909_phrases": github_archive("Dsqvival/hierarchical-structure-analysis", "HEAD",
                                     "Dai et al.'s repository, its default branch (name not known here)"),
    # The repository's <genre>/features/<file>.csv tables name this corpus's files (compared for jazz
    # and rhythm_and_blues: the same 40 names each); its MIDI files (<genre>/midi/<file>) could not be
    # inspected from here.
    "genre_corpus": github_archive("cjnolet/midi_genre_corpus", "HEAD",
                                   "UNCERTAIN: the repository is inferred from the corpus's file names, and "
                                   "its layout (<genre>/midi/<file>) from its listing"),
    "lmd_full": {
        "url": "http://hog.ee.columbia.edu/craffel/lmd/lmd_full.tar.gz",
        "format": "tar.gz", "strip": 1, "sha256": None,
        "note": "the whole Lakh MIDI Dataset (176,581 files: a large download, of which only the listed files "
                "are kept), as linked from https://colinraffel.com/projects/lmd/; not tested from here. "
                "Have it already? --source-url lmd_full=/path/to/lmd_full.tar.gz",
    },
    "labels": {
        "url": "https://raw.githubusercontent.com/andrebola/patterns-genres/master/data/midi_genre_map.json",
        "format": "file", "strip": 0, "sha256": None,
        "note": "the URL MusicBERT's README gives for Ferraro & Lemstrom's map; not tested from here",
    },
}



def lakh_group(folder: str, about: str, label_order: str) -> dict:
    """Lakh MIDI files out of lmd_full (<first hex digit>/<md5>.mid) and the labels.csv built for them."""
    return {
        "dir": folder, "about": about, "license": "CC-BY 4.0 (LMD)",
        "parts": [
            {"files": "midi/*.mid", "source": "lmd_full", "member": "{name[0]}/{name}"},
            {"files": "labels.csv", "derive": "labels_csv", "needs": "labels", "rows": "midi/*.mid",
             "order": label_order},
        ],
    }


GROUPS: dict[str, dict] = {
    "pop909": {
        "dir": "pop909",
        "about": "POP909 (Wang et al., ISMIR 2020): NNN/NNN.mid, with the phrase annotations of Dai et al. "
                 "(ISMIR 2020): human_label1.txt, human_label2.txt, melody.txt",
        "license": "MIT",
        "parts": [
            {"files": "*/*.mid", "source": "pop909_midi", "member": "POP909/{rel}"},
            {"files": "*/*.txt", "source": "pop909_phrases", "member": "POP909/{rel}"},
        ],
    },
    "genre_corpus": {
        "dir": "genre_corpus",
        "about": "a balanced genre corpus, 40 files in each of 8 genre folders (midi_genre_corpus)",
        "license": "none stated",
        "parts": [{"files": "*/*", "source": "genre_corpus", "member": "{dir}/midi/{name}"}],
    },
    # labels.csv: md5, then each taxonomy's labels from the map, repeats dropped, `|`-joined; the
    # subset's sorted, the extra files' in the map's order (first occurrence).
    "lmd_subset": lakh_group("lmd_subset", "550 Lakh MIDI files (lmd_full, named by md5) and their "
                             "TOP-MAGD / MASD / MAGD labels", "sorted"),
    "lmd_extra": lakh_group("lmd_extra", "1,351 more labelled Lakh MIDI files (none in lmd_subset) and "
                            "their labels", "as_listed"),
    "labels": {
        "dir": "labels",
        "about": "the TOP-MAGD / MASD / MAGD label map for LMD (Ferraro & Lemstrom, DLfM 2018)",
        "license": "research use",
        "parts": [{"files": "midi_genre_map.json", "source": "labels"}],
    },
}
