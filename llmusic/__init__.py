"""llmusic: how much do large language models know about symbolic music?

The package follows the pipeline: prompts -> llm -> parse -> midi -> data -> models -> eval.
"""

__version__ = "0.1.0"
