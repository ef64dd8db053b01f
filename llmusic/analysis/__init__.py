"""Analysis of a generated data set: manifest tallies, note statistics, figures, audio previews.

`python -m llmusic.analyze out_dir=...` runs it all (see llmusic/analyze.py and docs/analysis.md).
"""
