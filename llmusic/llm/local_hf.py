"""A local Hugging Face causal LM as a backend: open weights, no network, no bill.

Requests are grouped by sampling parameters and generated `batch_size` at a time with left
padding (so every prompt ends where generation starts). Generation runs in a worker thread, so the
engine's event loop keeps serving other work while the model computes. Sampling is seeded per batch
from the backend seed and the songs and attempts in it: a rerun reproduces its replies, and a retry
after a parse failure (a new attempt) draws a different reply. A second progress bar counts the
tokens generated (so it shows tokens/s).

Subclasses change where the weights come from (`_pretrained`, `_checkpoint_files`) and what else
`generate` gets (`_generate_kwargs`, e.g. a logits processor): llmusic/llm/gguf.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import zlib
from collections.abc import AsyncIterator, Sequence
from itertools import groupby
from pathlib import Path

from tqdm import tqdm

from llmusic.config import ConfigError
from llmusic.llm.base import Backend, Completion, SongRequest


class TokenProgress:
    """A `generate` streamer that counts the tokens of rows still generating into a tqdm bar."""

    def __init__(self, bar: tqdm, eos: set[int]) -> None:
        self.bar, self.eos = bar, eos
        self.alive: list[bool] | None = None  # None until the prompt has gone by

    def put(self, value) -> None:  # (B, T) prompt first, then (B,) or (B, 1) per step
        if self.alive is None:
            self.alive = [True] * value.shape[0]
            return
        tokens = value.reshape(-1).tolist()
        self.bar.update(sum(self.alive))
        self.alive = [a and t not in self.eos for a, t in zip(self.alive, tokens)]

    def end(self) -> None:
        self.bar.refresh()


class TransformersBackend(Backend):
    """Chat-style generation with `transformers.AutoModelForCausalLM` from a folder on disk."""

    is_llm = True
    paid = False
    free = True  # open weights on this machine: no bill

    def __init__(
        self,
        model_path: str | os.PathLike,
        batch_size: int = 8,
        device: str = "auto",
        dtype: str = "auto",
        do_sample: bool = True,
        seed: int = 0,
        threads: int | None = None,
        progress: bool = True,
        name: str = "transformers",
    ) -> None:
        self.name = name
        self.model_path = Path(model_path)
        self.batch_size = int(batch_size)
        self.device = device  # "auto" = cuda when available, else cpu
        self.dtype = dtype  # "auto" = what the checkpoint says; or float32, bfloat16, float16
        self.do_sample = bool(do_sample)  # False (or temperature 0) = greedy decoding
        self.seed = int(seed)
        self.threads = threads  # torch intra-op threads (None: torch's default, one per core)
        self.progress = bool(progress)
        self._bar: tqdm | None = None
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()  # one generation at a time: the model and the global RNG are shared

    def identity(self) -> dict:
        """Name, path and a hash of the checkpoint's files and of the settings that shape a reply."""
        h = hashlib.sha256()
        for path in self._checkpoint_files():
            with open(path, "rb") as f:  # in blocks: a weights file can be gigabytes
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        h.update(json.dumps(self._settings(), sort_keys=True).encode())
        return {"name": self.name, "model_path": str(self.model_path), "config_hash": h.hexdigest()[:16]}

    def _checkpoint_files(self) -> list[Path]:
        """The files whose bytes identify the model (the weights are named by the config)."""
        config = self.model_path / "config.json"
        if not config.is_file():
            raise ConfigError(f"llm.model_path={self.model_path}: no Hugging Face model there (config.json missing)")
        generation = self.model_path / "generation_config.json"
        return [config, generation] if generation.is_file() else [config]

    def _settings(self) -> dict:
        # batch_size is in it because the sampling seed depends on which songs share a batch.
        return {"dtype": self.dtype, "do_sample": self.do_sample, "seed": self.seed, "batch_size": self.batch_size}

    def _pretrained(self) -> tuple[Path, dict]:
        """What `from_pretrained` gets for the tokenizer and the model: a folder and extra arguments."""
        return self.model_path, {}

    def _load(self) -> None:
        if self._model is not None:
            return
        # transformers is the optional `local` extra: importing it here keeps the package light.
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.threads:
            torch.set_num_threads(self.threads)
        device = self.device if self.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = self.dtype if self.dtype == "auto" else getattr(torch, self.dtype)
        where, extra = self._pretrained()
        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True, **extra)
        tokenizer.padding_side = "left"  # prompts end where generation starts
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise ValueError(f"tokenizer at {self.model_path} has neither a pad nor an eos token")
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(where, local_files_only=True, dtype=dtype, **extra)
        self._model = model.to(device).eval()
        self._tokenizer = tokenizer

    def prompt_text(self, messages: Sequence[dict]) -> str:
        """The chat template when the tokenizer has one, else the contents joined by blank lines."""
        if self._tokenizer.chat_template:
            return self._tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in messages) + "\n"

    def _eos_ids(self) -> set[int]:
        ids = self._model.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, list) else [] if ids is None else [ids])
        if self._tokenizer.eos_token_id is not None:
            ids.add(self._tokenizer.eos_token_id)
        return ids

    def _generate_kwargs(self, batch: Sequence[SongRequest]) -> dict:
        """More arguments for `generate` (a subclass: a logits processor for the batch)."""
        return {}

    def _streamer(self) -> TokenProgress | None:
        if not self.progress:
            return None
        if self._bar is None:
            self._bar = tqdm(desc=f"{self.name} tokens", unit="tok", position=1, leave=False, smoothing=0.05)
        return TokenProgress(self._bar, self._eos_ids())

    def _generate(self, batch: Sequence[SongRequest]) -> list[Completion]:
        import torch

        first = batch[0]  # a batch shares its sampling parameters (see complete_many)
        tok, model = self._tokenizer, self._model
        texts = [self.prompt_text(r.messages) for r in batch]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=not tok.chat_template)
        enc = enc.to(model.device)
        sample = self.do_sample and first.temperature > 0
        sampling = {"do_sample": sample}
        if sample:
            sampling.update(temperature=first.temperature, top_p=first.top_p)
        seed = zlib.crc32(json.dumps([self.seed, [(r.song_id, r.attempt, r.seed) for r in batch]]).encode())
        with self._lock, torch.inference_mode():
            torch.manual_seed(seed)
            out = model.generate(**enc, max_new_tokens=first.max_tokens, pad_token_id=tok.pad_token_id,
                                 streamer=self._streamer(), **sampling, **self._generate_kwargs(batch))
        new = out[:, enc["input_ids"].shape[1]:].tolist()  # (B, T_new), rows padded after they finish
        eos = self._eos_ids()
        completions = []
        for row, prompt_len in zip(new, enc["attention_mask"].sum(dim=1).tolist()):
            stop = next((i for i, t in enumerate(row) if t in eos), None)
            tokens = row if stop is None else row[: stop + 1]
            completions.append(Completion(
                text=tok.decode(tokens, skip_special_tokens=True),
                finish_reason="stop" if stop is not None else "length",
                prompt_tokens=int(prompt_len),
                completion_tokens=len(tokens),
                model=self.model_path.name,
            ))
        return completions

    async def complete_many(
        self, requests: Sequence[SongRequest]
    ) -> AsyncIterator[tuple[SongRequest, Completion | BaseException]]:
        await asyncio.to_thread(self._load)  # a bad path is a configuration error: it raises
        # A batch shares its sampling and its response format (a constrained batch: one schema).
        sampling = lambda r: (r.temperature, r.top_p, r.max_tokens, json.dumps(r.response_format, sort_keys=True))  # noqa: E731
        for _, group in groupby(sorted(requests, key=sampling), key=sampling):
            group = list(group)
            for i in range(0, len(group), self.batch_size):
                batch = group[i: i + self.batch_size]
                try:
                    completions = await asyncio.to_thread(self._generate, batch)
                except Exception as e:  # e.g. out of memory: these requests fail, the run goes on
                    completions = [e] * len(batch)
                for request, completion in zip(batch, completions):
                    yield request, completion

    async def aclose(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._model = self._tokenizer = self._bar = None
