"""The local Hugging Face backend on a tiny random model built in the test: the real code path."""

from __future__ import annotations

import asyncio
import itertools

import pytest
import torch
from hydra.utils import instantiate
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from llmusic.config import ConfigError, compose_config
from llmusic.llm.base import Completion, SongRequest
from llmusic.llm.local_hf import TransformersBackend
from tests.helpers import constraint_set

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def tiny_tokenizer(chat_template: bool) -> PreTrainedTokenizerFast:
    """Byte-level, no merges: any text encodes, nothing to download."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet + SPECIAL)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                   additional_special_tokens=SPECIAL[1:])
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def save_tiny_model(path, *, chat_template: bool = True, eager_eos: bool = False):
    tokenizer = tiny_tokenizer(chat_template)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=2048, n_embd=32, n_layer=1, n_head=2,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = GPT2LMHeadModel(config)
    if eager_eos:
        # The final norm outputs one constant vector aligned with the (tied) eos embedding:
        # eos wins every step, so every reply stops at once.
        with torch.no_grad():
            direction = torch.randn(32)
            model.transformer.ln_f.weight.zero_()
            model.transformer.ln_f.bias.copy_(direction)
            model.transformer.wte.weight[tokenizer.eos_token_id] = 50 * direction
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny_gpt2"))


@pytest.fixture(scope="module")
def requests() -> list[SongRequest]:
    """The paper's real prompt, a few songs, two attempts of the first song."""
    template = instantiate(compose_config("prompt/paper").prompt)
    constraints = constraint_set("paper")
    songs = [("Jazz", "Swing", 0, 0), ("Jazz", "Swing", 0, 1), ("Rock", "Grunge", 0, 0), ("Pop", "Ballad", 3, 0),
             ("Blues", "Bluesy", 1, 0)]
    return [
        SongRequest(genre=g, style=s, mood="calm", index=i, attempt=a,
                    messages=tuple(template.messages(constraints, g, s, "calm")),
                    temperature=1.0, top_p=0.95, max_tokens=12)
        for g, s, i, a in songs
    ]


def backend_from_config(model_path, *overrides: str) -> TransformersBackend:
    cfg = compose_config("llm/transformers", [f"llm.model_path={model_path}", "llm.device=cpu", *overrides])
    return instantiate(cfg.llm)


def key(request: SongRequest) -> tuple[str, int, int]:
    return request.song_id, request.attempt, request.max_tokens  # requests hold dicts: not hashable


def run(backend, reqs) -> dict[tuple, Completion | BaseException]:
    async def go():
        return {key(r): c async for r, c in backend.complete_many(reqs)}

    results = asyncio.run(go())
    assert len(results) == len(reqs)
    return results


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_every_request_gets_a_completion(model_dir, requests, batch_size):
    backend = backend_from_config(model_dir, f"llm.batch_size={batch_size}")
    results = run(backend, requests)
    assert set(results) == {key(r) for r in requests}
    backend._load()
    encode = backend._tokenizer
    prompt_lengths = {key(r): len(encode(backend.prompt_text(r.messages), add_special_tokens=False).input_ids)
                      for r in requests}
    for request in requests:
        completion = results[key(request)]
        assert isinstance(completion, Completion)
        assert completion.text  # random weights: garbage, but decoded garbage
        assert completion.finish_reason == "length" and completion.completion_tokens == request.max_tokens
        assert completion.prompt_tokens == prompt_lengths[key(request)] > 500  # padding is not counted
        assert completion.model == model_dir.name
    assert backend.is_llm and not backend.paid


def test_same_seed_same_replies_and_a_new_attempt_differs(model_dir, requests):
    requests = requests[:3]
    first = run(backend_from_config(model_dir, "llm.batch_size=2"), requests)
    again = run(backend_from_config(model_dir, "llm.batch_size=2"), requests)
    other_seed = run(backend_from_config(model_dir, "llm.batch_size=2", "llm.seed=1"), requests)
    assert {r: c.text for r, c in first.items()} == {r: c.text for r, c in again.items()}
    assert {r: c.text for r, c in first.items()} != {r: c.text for r, c in other_seed.items()}
    attempt0, attempt1 = requests[0], requests[1]  # same song, same prompt, a retry
    assert first[key(attempt0)].text != first[key(attempt1)].text


def test_greedy_is_the_same_for_any_batching(model_dir, requests):
    texts = [
        {r: c.text for r, c in run(backend_from_config(model_dir, f"llm.batch_size={b}", "llm.do_sample=false"),
                                   requests).items()}
        for b in (1, 4)
    ]
    assert texts[0] == texts[1]  # left padding leaves each prompt's continuation unchanged


def test_a_model_that_stops_reports_stop(tmp_path, requests):
    backend = backend_from_config(save_tiny_model(tmp_path / "eager", eager_eos=True))
    for completion in run(backend, requests[:3]).values():
        assert completion.finish_reason == "stop" and completion.completion_tokens == 1
        assert completion.text == ""  # the eos is a special token: nothing to show


def test_without_a_chat_template_the_messages_are_joined(tmp_path, requests):
    backend = backend_from_config(save_tiny_model(tmp_path / "plain", chat_template=False))
    results = run(backend, requests[:2])
    system, user = (m["content"] for m in requests[0].messages)
    assert backend.prompt_text(requests[0].messages) == f"{system}\n\n{user}\n"
    assert all(isinstance(c, Completion) and c.completion_tokens == 12 for c in results.values())


def test_identity_names_the_model_and_hashes_what_shapes_a_reply(model_dir, tmp_path):
    base = backend_from_config(model_dir).identity()
    assert base["name"] == "transformers" and base["model_path"] == str(model_dir)
    assert base == backend_from_config(model_dir).identity()
    changed = [backend_from_config(model_dir, o).identity()["config_hash"]
               for o in ("llm.seed=7", "llm.do_sample=false", "llm.dtype=bfloat16")]
    assert len({base["config_hash"], *changed}) == 4
    with pytest.raises(ConfigError, match="llm.model_path=.*config.json"):
        backend_from_config(tmp_path / "nowhere").identity()


def test_sampling_groups_never_mix(model_dir, requests):
    mixed = [r if i % 2 else SongRequest(**{**r.__dict__, "max_tokens": 5}) for i, r in enumerate(requests)]
    results = run(backend_from_config(model_dir, "llm.batch_size=8"), mixed)
    for request in mixed:
        assert results[key(request)].completion_tokens == request.max_tokens
    assert len(list(itertools.groupby(sorted(r.max_tokens for r in mixed)))) == 2
