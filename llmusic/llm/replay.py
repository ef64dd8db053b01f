"""Replay recorded replies (a JSONL file) through the same parse, validate and render path.

Each line is one song: at least `genre`, `style`, `mood` and `response` (the reply text), and
optionally `messages` (a list of {role, content}), `temperature`, `top_p`, `max_tokens`,
`finish_reason`, `model` and `usage` (`prompt_tokens`, `completion_tokens`). A song's index is its
0-based line number, and every line gives exactly one record at that index: the file is read as
UTF-8 (a leading BOM is dropped, undecodable bytes become U+FFFD) and split at `\n` only (a `\r`
before it is dropped), so U+2028, U+0085 and the other characters `str.splitlines` breaks at stay
inside their line. A line that gives no song - not JSON, nested too deep, a number too long to read,
not an object, a missing or non-text key, a field of the wrong type - is recorded as a failed song
with its reason (`replay_line: ...`); it never stops the run. A recording holds one reply per song,
so a replay makes one attempt per song. The backend hands the engine's planner its lines
(`recorded_lines`); the planner makes them songs. A file ending in .gz is read through gzip.

`python -m llmusic.llm.replay RUN_DIR OUT.jsonl.gz` records every reply of a generate run (each
attempt, with its prompt, sampling and the run's verdict) as such a file.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import zlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from llmusic.config import ConfigError, short_sha256
from llmusic.files import json_line
from llmusic.llm.base import Backend, Completion, RecordedLine, SongRequest
from llmusic.run_dir import GenerateRun

REQUIRED = ("genre", "style", "mood", "response")
NUMBERS = ("temperature", "top_p")  # optional, finite numbers
TEXTS = ("finish_reason", "model")  # optional text


def split_lines(raw: bytes) -> list[str]:
    """The file's lines as the docs promise them: UTF-8 with an optional BOM, split at `\\n` only."""
    lines = raw.decode("utf-8-sig", errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line opens no new one
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def wrong_fields(line: dict) -> list[str]:
    """The optional fields a line holds with a type the engine cannot use."""
    def number(value: object) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    wrong = [k for k in NUMBERS if line.get(k) is not None and not number(line[k])]
    wrong += [k for k in TEXTS if line.get(k) is not None and not isinstance(line[k], str)]
    max_tokens = line.get("max_tokens")
    if max_tokens is not None and not (isinstance(max_tokens, int) and not isinstance(max_tokens, bool)
                                       and max_tokens > 0):
        wrong.append("max_tokens")
    messages = line.get("messages")
    if messages is not None and not (isinstance(messages, list) and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages)):
        wrong.append("messages")
    if line.get("usage") is not None and not isinstance(line["usage"], dict):
        wrong.append("usage")
    return wrong


class ReplayBackend(Backend):
    is_llm = True  # the replies came from an LLM; only their delivery is offline
    paid = False
    max_attempts = 1  # a recording holds one reply per song: nothing to ask again

    def __init__(self, path: str, name: str = "replay", file_sha256: str | None = None) -> None:
        self.name = name
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"llm.path={path}: no such file (a JSONL recording of replies)")
        try:
            stored = self.path.read_bytes()
            self._raw = gzip.decompress(stored) if self.path.suffix == ".gz" else stored
        except (OSError, EOFError, zlib.error) as err:  # a damaged or cut .gz
            raise ConfigError(f"llm.path={path}: does not decompress ({type(err).__name__}: {err})") from err
        if file_sha256 is not None and file_sha256 != short_sha256(stored):
            raise ConfigError(f"llm.path={path}: the file changed since this config was resolved (llm.file_sha256="
                              f"{file_sha256}, the file's is {short_sha256(stored)}): these are not the replies "
                              "the config names")
        self._lines: dict[int, dict] = {}  # index -> the line, for lines that read
        self._recorded = [self._read_line(index, raw) for index, raw in enumerate(split_lines(self._raw))]

    def identity(self) -> dict:
        return {"name": self.name, "file": self.path.name, "sha256": short_sha256(self._raw)}

    def recorded_lines(self) -> list[RecordedLine]:
        return list(self._recorded)

    def _read_line(self, index: int, raw: str) -> RecordedLine:
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as error:
            return RecordedLine(index, None, None, None, failure=f"replay_line: not JSON ({error.msg})")
        except RecursionError:
            return RecordedLine(index, None, None, None, failure="replay_line: nested too deep to read")
        except ValueError as error:  # an integer past Python's digit limit
            return RecordedLine(index, None, None, None, failure=f"replay_line: unreadable number ({error})"[:200])
        if not isinstance(line, dict):
            return RecordedLine(index, None, None, None, failure="replay_line: not a JSON object")
        labels = {k: line[k] if isinstance(line.get(k), str) else None for k in ("genre", "style", "mood")}
        missing = [k for k in REQUIRED if not isinstance(line.get(k), str)]
        if missing:
            return RecordedLine(index, **labels, failure=f"replay_line: missing or non-text {', '.join(missing)}")
        wrong = wrong_fields(line)
        if wrong:
            return RecordedLine(index, **labels, failure=f"replay_line: wrong type of {', '.join(wrong)}")
        self._lines[index] = line
        return RecordedLine(index, **labels, messages=line.get("messages"), temperature=line.get("temperature"),
                            top_p=line.get("top_p"), max_tokens=line.get("max_tokens"))

    async def complete_many(
        self, requests: Sequence[SongRequest]
    ) -> AsyncIterator[tuple[SongRequest, Completion | BaseException]]:
        for request in requests:
            line = self._lines.get(request.index)
            if line is None:
                yield request, KeyError(f"no recorded reply for line {request.index}")
                continue
            usage = line.get("usage") if isinstance(line.get("usage"), dict) else {}
            yield request, Completion(
                text=line["response"], finish_reason=str(line.get("finish_reason") or "stop"),
                prompt_tokens=_count(usage.get("prompt_tokens")),
                completion_tokens=_count(usage.get("completion_tokens")), model=line.get("model"),
            )


def _count(value: object) -> int:
    """A recorded token count, or 0 when the recording has none worth trusting."""
    return value if isinstance(value, int) and value >= 0 else 0


def recording(run_dir: str | Path) -> list[dict]:
    """Every reply of a generate run as replay lines, in plan order, attempt by attempt.

    Beyond the replay keys a line keeps `index` and `attempt` (the song's and the try's number in
    the run) and the run's verdict on it (`status`, `reason`)."""
    run = GenerateRun(run_dir)
    texts = {(r["genre"], r["style"], r["index"], r["attempt"]): r["text"] for r in run.reply_records()}
    lines = []
    for song in run.records():
        for attempt in song["attempts"]:
            text = texts.get((song["genre"], song["style"], song["index"], attempt["attempt"]))
            if text is None:  # a request error or a reply never asked for: nothing was written
                continue
            tokens = attempt.get("tokens") or {}
            lines.append({
                "genre": song["genre"], "style": song["style"], "mood": song["mood"], "index": song["index"],
                "attempt": attempt["attempt"], "messages": song["messages"], **song["sampling"],
                "finish_reason": attempt.get("finish_reason"), "model": attempt.get("model"),
                "usage": {"prompt_tokens": tokens.get("prompt"), "completion_tokens": tokens.get("completion")},
                "status": attempt["status"], "reason": attempt.get("reason"), "response": text,
            })
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="Record every reply of a generate run as a replay file.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path, help="a .jsonl file, or .jsonl.gz")
    args = parser.parse_args()
    lines = recording(args.run_dir)
    data = "".join(json_line(line) for line in lines).encode()  # any reply text, one line each
    args.out.write_bytes(gzip.compress(data, mtime=0) if args.out.suffix == ".gz" else data)
    print(f"{len(lines)} replies from {args.run_dir} -> {args.out}")


if __name__ == "__main__":
    main()
