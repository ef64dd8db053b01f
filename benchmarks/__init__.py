"""Speed benchmarks, each against the alternative a user would really run, in the same run.

Run one from the repository root as a module: `python -m benchmarks.<name> [--help]`. Each prints
its table and writes it as markdown and CSV (`benchmarks.tables`); its README-*.md holds the
measured numbers and how to read them.
"""
