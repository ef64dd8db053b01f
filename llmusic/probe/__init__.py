"""A classifier-free probe of a generate run against labelled real MIDI (issue 15).

    python -m llmusic.probe llm_run=<generate run> [dataset=lmd_topmagd] [label_map=...] [label=genre]

The parts, in the order they run: `samples` (the two sides as feature sets, from
llmusic.midi.features), `distance` (standardising, the energy distance with song-bootstrap
intervals, retrieval and its permutation chance), `realism` (a cross-validated logistic-regression
two-sample test, AUC), `gaps` (per-feature differences in words), `compare` (all of them, and the
real-vs-real calibration), `figures` and `markdown` (the report). docs/probe.md explains each number.
"""

PROBE_FILE = "probe.json"  # every number of a probe, in its out_dir (read by `report --leaderboard`)
