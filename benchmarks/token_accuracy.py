"""How far llm_bridge.tokens lies from the providers' own counts.

    python benchmarks/token_accuracy.py

The corpus (``data/token_pairs.json``) holds request/response pairs captured from public
material — provider docs, SDK examples, recorded API fixtures — each with the exact text and
the token counts the provider reported (source and caveats per pair). For every pair this
counts the same text locally (prompts with the chat-template overhead, completions with the
reasoning text the provider also billed) and prints the error per provider.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from llm_bridge.tokens import count_message_tokens, count_tokens, tokenizer_info

CORPUS = Path(__file__).with_name("data") / "token_pairs.json"


def measure() -> dict[str, list[tuple[str, int, int]]]:
    """Per provider: (what, provider's count, our count) for every comparable figure."""
    results: dict[str, list[tuple[str, int, int]]] = {}
    for pair in json.loads(CORPUS.read_text(encoding="utf-8")):
        provider, model = pair["provider"], pair["model"]
        rows = results.setdefault(provider, [])
        if pair.get("messages") and pair.get("prompt_tokens"):
            ours = count_message_tokens(pair["messages"], model, provider=provider)
            rows.append(("prompt", pair["prompt_tokens"], ours))
        if pair.get("completion") and pair.get("completion_tokens"):
            text = (pair.get("reasoning_content") or "") + pair["completion"]
            rows.append(
                (
                    "completion",
                    pair["completion_tokens"],
                    count_tokens(text, model, provider=provider),
                )
            )
    return results


def main() -> None:
    print(
        f"{'provider':<11}{'exact?':>7}{'figures':>9}{'mean |error|':>14}{'median':>9}"
        f"{'worst':>8}{'bias':>8}"
    )
    for provider, rows in sorted(measure().items()):
        errors = [(ours - theirs) / theirs * 100 for _, theirs, ours in rows if theirs]
        exact = tokenizer_info("x", provider=provider).exact
        print(
            f"{provider:<11}{'yes' if exact else 'no':>7}{len(errors):>9}"
            f"{statistics.mean(abs(e) for e in errors):>13.1f}%"
            f"{statistics.median(abs(e) for e in errors):>8.1f}%"
            f"{max(abs(e) for e in errors):>7.0f}%{statistics.mean(errors):>+7.1f}%"
        )


if __name__ == "__main__":
    main()
