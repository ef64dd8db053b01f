"""llmusic: how much do large language models know about symbolic music?

The package follows the pipeline: prompts -> llm -> parse -> midi -> engine -> generate makes a
run (llmusic.run_dir), midi -> data -> models -> eval learns from it; docs/architecture.md says
which part may import which.
"""

__version__ = "0.1.0"
