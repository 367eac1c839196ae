"""llm_bridge.tokens: exact Qwen counts, tokenizer_info, lazy and offline, checksummed vocabulary.

The reference counts here do not come from ``llm_bridge.tokens``: they are the figures
DashScope billed (docs/providers/dashscope.md, shapes D1 and D8), well-known single-token
words, and a small byte-level BPE written below that reads the shipped vocabulary file
with nothing but base64 and the published Qwen pre-tokenizer pattern.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Optional

import pytest
import regex

from llm_bridge import tokens
from llm_bridge.tokens import (
    VocabularyError,
    count_message_tokens,
    count_tokens,
    tokenizer_info,
)

VOCAB_FILE = Path(tokens.__file__).with_name("vocab") / "qwen.tiktoken"

# Qwen's pre-tokenizer, as published in Qwen's tokenization_qwen.py (PAT_STR).
QWEN_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
    r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Shape D1 (docs/providers/dashscope.md): DashScope billed these exact figures for qwen-plus.
D1_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "你是谁？"},
]
D1_INPUT_TOKENS = 22
D1_ANSWER = "我是阿里云开发的一款超大规模语言模型，我叫通义千问。"
D1_OUTPUT_TOKENS = 17

# Shape D8 (docs/providers/dashscope.md; compatible mode, no system message): prompt_tokens 11.
D8_MESSAGES = [{"role": "user", "content": "你是谁?"}]
D8_PROMPT_TOKENS = 11

SAMPLES = [
    "hello",
    "Hello, world!",
    "你好",
    "你好世界",
    "通义千问是阿里云研发的大语言模型，支持 32768 个 tokens 的上下文。",
    "def square(x):\n    return x ** 2\n\n",
    "Mixed 中英文 text with emoji 👋🤖 and numbers 3.14159!",
    "I'm sure they'll say it's fine, aren't they?",
    "  leading spaces\r\n\r\ntrailing  ",
    D1_ANSWER,
]


@pytest.fixture
def fresh_encoding_cache():
    """Every test that meddles with the cache leaves it empty (the next use reloads it)."""
    tokens._encodings.clear()
    yield
    tokens._encodings.clear()


# --------------------------------------------------------------------------- reference BPE


@pytest.fixture(scope="module")
def reference_ranks() -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for line in VOCAB_FILE.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def reference_tokens(text: str, ranks: dict[bytes, int]) -> list[bytes]:
    """Byte-level BPE: split with the pattern, then merge the lowest-ranked pair until none."""
    out: list[bytes] = []
    for piece in regex.findall(QWEN_PATTERN, text):
        parts = [bytes([b]) for b in piece.encode("utf-8")]
        while len(parts) > 1:
            best: Optional[tuple[int, int]] = None
            for i in range(len(parts) - 1):
                rank = ranks.get(parts[i] + parts[i + 1])
                if rank is not None and (best is None or rank < best[0]):
                    best = (rank, i)
            if best is None:
                break
            i = best[1]
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        out.extend(parts)
    return out


def test_reference_bpe_reproduces_dashscopes_billed_answer(reference_ranks) -> None:
    # The reference itself is checked against the provider before it checks anything else.
    assert len(reference_tokens(D1_ANSWER, reference_ranks)) == D1_OUTPUT_TOKENS
    assert reference_tokens("hello", reference_ranks) == [b"hello"]
    assert reference_tokens("你好", reference_ranks) == ["你好".encode()]


@pytest.mark.parametrize("text", SAMPLES)
def test_count_tokens_matches_an_independent_bpe(text: str, reference_ranks) -> None:
    expected = len(reference_tokens(text, reference_ranks))
    assert count_tokens(text, "qwen-plus") == expected
    assert count_tokens(text, "dashscope/qwen-max") == expected


def test_well_known_single_tokens() -> None:
    assert count_tokens("hello", "qwen-plus") == 1
    assert count_tokens("你好", "qwen-plus") == 1
    assert count_tokens("", "qwen-plus") == 0
    # Qwen splits numbers digit by digit.
    assert count_tokens("12345", "qwen-plus") == 5


def test_d1_figures_billed_by_dashscope() -> None:
    assert count_message_tokens(D1_MESSAGES, "qwen-plus") == D1_INPUT_TOKENS
    assert count_tokens(D1_ANSWER, "qwen-plus") == D1_OUTPUT_TOKENS
    assert count_message_tokens(D1_MESSAGES, "dashscope/qwen-plus") == D1_INPUT_TOKENS


def test_d8_prompt_without_system_message() -> None:
    # D8 was captured in compatible mode, which adds no default system prompt.
    assert count_message_tokens(D8_MESSAGES, "qwen-plus", api="compatible") == D8_PROMPT_TOKENS


def test_native_api_bills_its_default_system_prompt_when_there_is_none() -> None:
    # A captured qwen-turbo exchange on the native API: the user text alone billed 24.
    messages = [{"role": "user", "content": "你好，你是谁？"}]
    assert count_message_tokens(messages, "qwen-turbo") == 24
    with_system = [{"role": "system", "content": "You are a helpful assistant."}, *messages]
    assert count_message_tokens(with_system, "qwen-turbo") == 24


def test_message_overhead_grows_per_message_and_counts_text_parts() -> None:
    one = count_message_tokens([{"role": "user", "content": "你好"}], "qwen-plus")
    two = count_message_tokens(
        [{"role": "user", "content": "你好"}, {"role": "user", "content": "你好"}], "qwen-plus"
    )
    # <|im_start|>user\n你好<|im_end|>\n is 6 tokens in ChatML.
    assert two - one == 6
    parts = [{"type": "text", "text": "你好"}, {"type": "image_url", "image_url": {"url": "x"}}]
    assert count_message_tokens([{"role": "user", "content": parts}], "qwen-plus") == one


def test_chinese_counts_far_below_character_count() -> None:
    # The point of shipping Qwen's vocabulary: Chinese is not one token per character.
    text = "我是阿里云开发的一款超大规模语言模型" * 10
    assert count_tokens(text, "qwen-plus") < len(text) * 0.6


# --------------------------------------------------------------------------- tokenizer_info


def test_tokenizer_info_dashscope_is_exact() -> None:
    info = tokenizer_info("qwen-plus")
    assert info.provider == "dashscope"
    assert info.vocabulary == "qwen"
    assert info.exact is True
    assert info.template == "chatml"


@pytest.mark.parametrize(
    ("model", "provider"), [("glm-4-flash", "zhipu"), ("ernie-4.0-8k", "qianfan")]
)
def test_tokenizer_info_others_are_declared_approximations(model: str, provider: str) -> None:
    info = tokenizer_info(model)
    assert info.provider == provider
    assert info.exact is False
    assert info.vocabulary == "qwen"


def test_tokenizer_info_provider_slash_model_form() -> None:
    info = tokenizer_info("dashscope/qwen-max")
    assert (info.provider, info.model, info.exact) == ("dashscope", "qwen-max", True)
    zhipu = tokenizer_info("zhipu/glm-4-plus")
    assert (zhipu.provider, zhipu.model, zhipu.exact) == ("zhipu", "glm-4-plus", False)
    assert zhipu.template == "glm4"
    explicit = tokenizer_info("glm-4-plus", provider="zhipu")
    assert explicit == zhipu


def test_tokenizer_info_unknown_model_is_not_exact() -> None:
    info = tokenizer_info("no-such-model-9000")
    assert info.exact is False
    assert info.provider is None
    # Still countable: falls back to the closest vocabulary shipped.
    assert count_tokens("hello", "no-such-model-9000") == 1


# --------------------------------------------------------------------------- lazy, offline


def test_import_loads_no_vocabulary_and_no_tiktoken(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        import llm_bridge
        from llm_bridge import OpenAI
        import llm_bridge.tokens as t
        client = OpenAI(provider="zhipu", api_key="id.secret")
        print(json.dumps({
            "tiktoken": sorted(m for m in sys.modules if m.split(".")[0] == "tiktoken"),
            "cached": len(t._encodings),
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"tiktoken": [], "cached": 0}


def _counted_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The vocabularies built from here on, in order (the real builds, observed)."""
    built: list[str] = []
    real = tokens._built

    def spy(name: str) -> object:
        built.append(name)
        return real(name)

    monkeypatch.setattr(tokens, "_built", spy)
    return built


def test_vocabulary_loads_on_first_use_once(monkeypatch, fresh_encoding_cache) -> None:
    built = _counted_builds(monkeypatch)
    count_tokens("hello", "qwen-plus")
    count_message_tokens(D1_MESSAGES, "glm-4-flash")
    assert built == ["qwen"]
    assert list(tokens._encodings) == ["qwen"]


def test_threads_counting_at_once_build_the_vocabulary_once(
    monkeypatch, fresh_encoding_cache
) -> None:
    """A server's threads whose first streams close at once each count: one builds the
    vocabulary (0.2 s, 50 MiB at its peak) and the others wait for it."""
    built = _counted_builds(monkeypatch)
    start = threading.Barrier(6)
    counts: list[int] = []

    def count() -> None:
        start.wait()
        counts.append(count_tokens(D1_ANSWER, "qwen-plus"))

    threads = [threading.Thread(target=count) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert counts == [D1_OUTPUT_TOKENS] * 6
    assert built == ["qwen"]


def test_counts_with_no_network(monkeypatch, tmp_path: Path, fresh_encoding_cache) -> None:
    def refuse(*args, **kwargs):
        raise OSError("network is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # An empty tiktoken cache: any download attempt would need the network.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken-cache"))
    assert count_tokens(D1_ANSWER, "qwen-plus") == D1_OUTPUT_TOKENS
    assert count_message_tokens(D1_MESSAGES, "qwen-plus") == D1_INPUT_TOKENS
    assert not (tmp_path / "tiktoken-cache").exists()


def test_damaged_vocabulary_fails_loudly(monkeypatch, tmp_path: Path, fresh_encoding_cache) -> None:
    damaged = bytearray(VOCAB_FILE.read_bytes())
    # Swap two base64 letters in one line: still parseable, one token silently wrong.
    line_start = damaged.index(b"\n", 500_000) + 1
    first = damaged[line_start]
    damaged[line_start] = ord("A") if first != ord("A") else ord("B")
    (tmp_path / "qwen.tiktoken").write_bytes(bytes(damaged))
    monkeypatch.setattr(tokens, "_VOCAB_DIR", tmp_path)

    with pytest.raises(VocabularyError) as caught:
        count_tokens("hello", "qwen-plus")
    message = str(caught.value)
    assert "SHA-256" in message
    assert "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186" in message
    assert tokens._encodings == {}  # nothing damaged was kept

    # The intact file under the same patched directory loads again.
    shutil.copyfile(VOCAB_FILE, tmp_path / "qwen.tiktoken")
    assert count_tokens("hello", "qwen-plus") == 1


def test_missing_vocabulary_fails_loudly(monkeypatch, tmp_path: Path, fresh_encoding_cache) -> None:
    monkeypatch.setattr(tokens, "_VOCAB_DIR", tmp_path)
    with pytest.raises(VocabularyError, match="missing"):
        count_message_tokens(D1_MESSAGES, "qwen-plus")


def test_a_huge_text_is_estimated_from_a_bounded_exact_count(monkeypatch) -> None:
    """Issue 19: counting hundreds of MB of streamed text took minutes and GBs, and could
    abort the process inside the native tokenizer. The tokenizer now never sees more than
    `EXACT_LIMIT` characters at once; longer texts are scaled from that count."""
    from llm_bridge import tokens

    encoding = tokens._encoding("qwen")
    seen: list[int] = []
    real_encode = encoding.encode

    class Spy:
        def encode(self, text: str, **kwargs: object) -> list[int]:
            seen.append(len(text))
            return real_encode(text, **kwargs)

    monkeypatch.setattr(tokens, "_encoding", lambda name: Spy())
    unit = "模型迁移 moving house, 搬家。"
    small = unit * 100
    exact = count_tokens(small, "qwen-plus")
    huge = unit * (tokens.EXACT_LIMIT // len(unit) * 40)
    estimate = count_tokens(huge, "qwen-plus")
    assert max(seen) <= tokens.EXACT_LIMIT
    assert abs(estimate - exact * len(huge) / len(small)) / estimate < 0.01
    messages = [{"role": "user", "content": huge}]
    assert count_message_tokens(messages, "qwen-plus") >= estimate
    assert max(seen) <= tokens.EXACT_LIMIT
