"""Reply text -> the Python object it holds, as leniently as is safe.

Three readers, cheapest first: strict `json.loads` of the whole text (the common case, all in C);
`raw_decode` from a '{' on (strict JSON inside code fences or wrapped in prose); and a tolerant
tokenizer for everything else models write: the Python-literal form the paper's own prompt shows
(single quotes, tuples), trailing or missing commas, comments, `...`, bare keys, and replies cut
off at the token limit. Nothing is evaluated: the tokenizer only builds dicts, lists, numbers and
strings, iteratively, so no text can recurse it to death.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from llmusic.parse.reasons import ReplyRejected

MAX_DEPTH = 64  # a song nests 4 deep (reply, track, event, value); deeper text is not a song
MAX_STARTS = 16  # '{' positions tried per reply: bounds the work on long prose full of braces

_TOKEN = re.compile(
    r"""[\s,]*+(?:                                     # separators: commas may be missing or trailing
      (//[^\n]*|\#[^\n]*|/\*.*?\*/|\.\.\.|\u2026)      # 1 skipped: comments, ellipses
    | (\d+\s*/\s*\d+)                                  # 2 unquoted meter: 3/4, read as text
    | ([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)  # 3 number
    | ("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')            # 4 string
    | ([\[{(])                                         # 5 opener: tuples read as lists
    | ([\]})])                                         # 6 closer
    | (:)                                              # 7 colon
    | ([A-Za-z_]\w*)                                   # 8 bare word: key, true/None/..., or text
    | (["']|/\*)                                       # 9 unclosed string or comment: the text ends inside it
    | (.)                                              # 10 anything else
    )""",
    re.X | re.S,
)
_SKIP, _METER, _NUMBER, _STRING, _OPEN, _CLOSE, _COLON, _WORD, _UNCLOSED, _JUNK = range(1, 11)
# The common event is four plain integers: a run of them is matched at once and split by findall,
# instead of ten trips per event through the tokenizer loop (4x faster on the paper's form).
_EVENT = r"[\s,]*+[\[(]\s*(-?\d{1,9})\s*,\s*(-?\d{1,9})\s*,\s*(-?\d{1,9})\s*,\s*(-?\d{1,9})\s*,?\s*[\])]"
_EVENT_RUN = re.compile(f"(?:{_EVENT})+")
_EVENT_FIELDS = re.compile(_EVENT)
_WORDS = {"true": True, "True": True, "false": False, "False": False, "null": None, "None": None}
_INVALID = object()  # a value the tokenizer could not read; validation drops its event
_NO_KEY = object()
_DECODER = json.JSONDecoder()


@dataclass
class Parsed:
    value: object  # None when nothing usable was read
    end: int  # index in the text where reading stopped
    fixes: dict[str, int] = field(default_factory=dict)  # "truncated" / "syntax_error" counts


class _Frame:
    """An open container: the dict or list being filled, and a dict's pending key."""

    __slots__ = ("value", "key", "colon", "nested")

    def __init__(self, value: dict | list) -> None:
        self.value = value
        self.key: object = _NO_KEY
        self.colon = False
        self.nested = False  # holds a container: kept and closed at a cut, where a leaf is dropped

    def expects_value(self) -> bool:
        return type(self.value) is list or (self.key is not _NO_KEY and self.colon)

    def add(self, value: object) -> None:
        if type(self.value) is list:
            self.value.append(value)
        else:
            self.value[self.key] = value
            self.key, self.colon = _NO_KEY, False


def _scalar(kind: int, token: str) -> object:
    if kind == _NUMBER:
        if "." in token or "e" in token or "E" in token:
            return float(token)
        try:
            return int(token)
        except ValueError:  # more digits than int() converts; as a float it is inf, rejected later
            return float(token)
    if kind == _STRING:
        body = token[1:-1]
        if "\\" not in body:
            return body
        if token[0] == '"':
            try:
                return json.loads(token, strict=False)
            except ValueError:
                return body
        return body.replace("\\'", "'")
    return _WORDS.get(token, token)


def _unwind(stack: list[_Frame], end: int, fixes: dict[str, int]) -> Parsed:
    """Close every open container at a cut: a leaf (an event, a half-written track) is dropped,
    a container of containers (a track with complete events, the reply) is closed and kept."""
    value = None
    while stack:
        frame = stack.pop()
        value = frame.value if frame.nested else None
        if stack:
            if value is None:
                stack[-1].key, stack[-1].colon = _NO_KEY, False
            else:
                stack[-1].add(value)
    return Parsed(value, end, fixes)


def _bump(fixes: dict[str, int], key: str) -> None:
    fixes[key] = fixes.get(key, 0) + 1


def parse_lenient(text: str, start: int) -> Parsed:
    """Read the one value that opens at text[start] ('{' or '['), tolerating what models write.

    A text that ends inside the value (a reply cut at the token limit) is closed after its last
    complete event (fixes["truncated"]); a token that cannot be read where it stands ends reading
    the same way (fixes["syntax_error"]). Stray or mismatched closers are skipped or close the
    containers they skip over (also counted as syntax errors).
    """
    stack: list[_Frame] = []
    fixes: dict[str, int] = {}
    pos = start
    while True:
        top = stack[-1] if stack else None
        if top is not None and type(top.value) is list:
            run = _EVENT_RUN.match(text, pos)
            if run is not None:
                events = _EVENT_FIELDS.findall(run[0])
                top.value.extend([[int(p), int(d), int(v), int(t)] for p, d, v, t in events])
                top.nested = True
                pos = run.end()
                continue
        match = _TOKEN.match(text, pos)
        if match is None:  # nothing but separators left
            break
        pos = match.end()
        kind = match.lastindex
        if kind == _SKIP:
            continue
        token = match.group(kind)
        if kind == _OPEN:
            if top is not None and (not top.expects_value() or len(stack) >= MAX_DEPTH):
                _bump(fixes, "syntax_error")
                return _unwind(stack, match.start(kind), fixes)
            if top is not None:
                top.nested = True
            stack.append(_Frame({} if token == "{" else []))
            continue
        if top is None:  # text before the opener: the caller starts at one, so nothing to read
            return Parsed(None, match.start(kind), fixes)
        if kind == _CLOSE:
            wants = dict if token == "}" else list
            depth = next((i for i in range(len(stack) - 1, -1, -1) if type(stack[i].value) is wants), None)
            if depth is None:
                _bump(fixes, "syntax_error")
                continue
            if depth < len(stack) - 1 or stack[depth].key is not _NO_KEY:
                _bump(fixes, "syntax_error")  # closes over open containers or a key with no value
            while len(stack) > depth + 1:
                inner = stack.pop()
                stack[-1].add(inner.value)
            done = stack.pop()
            if not stack:
                return Parsed(done.value, match.end(), fixes)
            stack[-1].add(done.value)
            continue
        if kind == _UNCLOSED:
            break
        readable = kind in (_NUMBER, _STRING, _WORD, _METER)
        if type(top.value) is list:
            top.add(_scalar(kind, token) if readable else _INVALID)
        elif top.key is _NO_KEY and readable:
            top.key = token if kind in (_NUMBER, _METER) else _scalar(kind, token)
        elif top.key is not _NO_KEY and not top.colon and kind == _COLON:
            top.colon = True
        elif top.colon and readable:
            top.add(_scalar(kind, token))
        else:
            _bump(fixes, "syntax_error")
            return _unwind(stack, match.start(kind), fixes)
    fixes["truncated"] = 1
    return _unwind(stack, len(text), fixes)


def extract_object(text: str, is_song: Callable[[dict], bool]) -> tuple[object, str, dict[str, int]]:
    """The object a reply holds, how it was found ("json" | "embedded" | "lenient"), and the
    syntax fixes that needed.

    A whole-text JSON value is returned as it is, whatever its type (the validator says
    `not_an_object`). Otherwise the dicts opening at successive '{' are read, each attempt
    starting after the text the previous one consumed, and the first that `is_song` accepts
    wins; failing that, the first dict read. Raises ReplyRejected("empty_reply" | "no_json").
    """
    if not isinstance(text, str) or not text.strip():
        raise ReplyRejected("empty_reply")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        pass
    else:
        if not isinstance(value, str):
            return value, "json", {}
        text = value  # a JSON string holding the reply: some servers double-encode
    fallback = None
    pos = 0
    for _ in range(MAX_STARTS):
        start = text.find("{", pos)
        if start < 0:
            break
        try:
            value, end = _DECODER.raw_decode(text, start)
            found = Parsed(value, end)
            form = "embedded"
        except (ValueError, RecursionError):
            found = parse_lenient(text, start)
            form = "lenient"
        if isinstance(found.value, dict):
            if is_song(found.value):
                return found.value, form, found.fixes
            fallback = fallback or (found.value, form, found.fixes)
        pos = max(found.end, start + 1)
    if fallback is None:
        raise ReplyRejected("no_json")
    return fallback
