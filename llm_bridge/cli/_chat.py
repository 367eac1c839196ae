"""``llm-bridge chat MODEL [PROMPT]``: talk to a model from the terminal, streamed.

The call goes through ``llm_bridge.OpenAI``, so MODEL is anything the SDK routes: a
catalogue name (``glm-4-flash``), ``provider/model``, or an alias of the config. The
answer streams to stdout as it comes (reasoning, when the model shows it, to stderr, so
stdout holds the answer alone); then the usage and the cost in yuan, from the client's
usage record (`llm_bridge.usage.UsageRecord`), go to stderr.

The prompt is the argument, else stdin when it is not a terminal. With no prompt on a
terminal, it is a conversation: each line is a turn, the history is kept and sent each
time, an empty line is ignored, ``/exit`` (or Ctrl-D) leaves.

``--json`` prints each chunk as openai's JSON, one a line, then one line with the usage
record (``"object": "llm_bridge.usage"``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING, Any, Optional

from ._output import Output

if TYPE_CHECKING:
    from .._client import OpenAI
    from ..usage import UsageRecord

__all__ = ["configure", "run"]

DESCRIPTION = """\
Send PROMPT to MODEL and stream the answer; then print the tokens used and the cost in
CNY (stderr). MODEL is a catalogue name (glm-4-flash), provider/model (dashscope/qwen-plus)
or an alias from the config. Without PROMPT the prompt is read from stdin; on a terminal
that starts a conversation (history kept; an empty line is ignored; /exit or Ctrl-D
leaves).

exit status: 0 ok, 1 the provider call failed, 2 usage or config error (no key, unknown
model, no prompt)"""

EPILOG = """\
examples:
  llm-bridge chat glm-4-flash "用一句话介绍你自己"
  echo "Summarise: ..." | llm-bridge chat dashscope/qwen-plus --system "Be brief."
  llm-bridge chat qwen-plus --json "hi" | jq -c .choices
  llm-bridge chat ernie-4.5-turbo-128k          # a conversation on a terminal"""

#: What the conversation accepts, besides a turn.
EXIT_WORDS = ("/exit", "/quit")


def configure(subparsers: Any) -> None:
    """Add ``chat`` to the command's subparsers."""
    parser = subparsers.add_parser(
        "chat",
        help="stream a model's answer (a conversation on a terminal)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="model, provider/model, or alias")
    parser.add_argument("prompt", metavar="PROMPT", nargs="?", help="default: stdin")
    parser.add_argument("--system", metavar="TEXT", help="a system message first")
    parser.add_argument(
        "--temperature", type=_temperature, metavar="T", help="sampling temperature, 0 to 2"
    )
    parser.add_argument("--provider", metavar="NAME", help="the provider (default: by MODEL)")
    parser.add_argument("--config", metavar="FILE", help="the config file (default: as the SDK)")
    parser.add_argument(
        "--json", action="store_true", help="each chunk as JSON, one a line, then the usage"
    )
    parser.set_defaults(run=run, trailing="prompt")  # PROMPT may follow the options


def _temperature(text: str) -> float:
    """``--temperature``: a number in OpenAI's range, which the SDK checks before sending;
    refused here, it is a usage error (exit status 2) rather than a failed call."""
    from ..adapters._params import _RANGES

    low, high = next((lo, hi) for name, lo, hi in _RANGES if name == "temperature")
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:  # (NaN is in no range)
        raise argparse.ArgumentTypeError(
            f"expected a number from {low:g} to {high:g}, got {text!r}"
        )
    return value


def run(args: argparse.Namespace) -> int:
    from .._client import OpenAI
    from ._config_file import find_config, load

    out = Output(json_mode=args.json)
    config = load(find_config(args.config))
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    prompt = args.prompt
    interactive = prompt is None and _isatty(sys.stdin)
    if prompt is None and not interactive:
        prompt = _read_stdin()
        if prompt is None:
            out.error(NOT_TEXT)
            return 2
        if not prompt.strip():
            out.error("no prompt: give one as an argument or on stdin")
            return 2
    client = OpenAI(config=config, provider=args.provider)
    try:
        if interactive:
            return _conversation(client, args, messages, out)
        messages.append({"role": "user", "content": prompt})
        _turn(client, args, messages, out)
        return 0
    finally:
        client.close()


#: What is said of input that is not text in the terminal's encoding.
NOT_TEXT = (
    "the input is not UTF-8 text (a GBK file?): convert it first, e.g. "
    "iconv -f GBK -t UTF-8 FILE | llm-bridge chat MODEL"
)


def _read_stdin() -> Optional[str]:
    """The prompt piped in, its final line break dropped; None when it is not text
    (undecodable bytes, read strictly or as ``surrogateescape`` lone surrogates)."""
    try:
        text = sys.stdin.read().rstrip("\r\n")
    except UnicodeDecodeError:
        return None
    return text if _is_text(text) else None


def _is_text(text: str) -> bool:
    """Whether ``text`` can be sent: Python reads undecodable stdin bytes as lone
    surrogates (``surrogateescape``), which no JSON body can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _turn(
    client: OpenAI, args: argparse.Namespace, messages: list[dict[str, Any]], out: Output
) -> str:
    """One streamed answer to ``messages``, printed as it comes; its text is returned."""
    extra: dict[str, Any] = {}
    if args.temperature is not None:
        extra["temperature"] = args.temperature
    stream = client.chat.completions.create(
        model=args.model,
        messages=messages,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
        **extra,
    )
    answer: list[str] = []
    reasoning = False
    with stream:
        for chunk in stream:
            if out.json_mode:
                out.json_line(chunk.model_dump(mode="json", exclude_unset=True))
                answer.extend(c.delta.content or "" for c in chunk.choices[:1])
                continue
            for choice in chunk.choices[:1]:
                thought = getattr(choice.delta, "reasoning_content", None)
                if isinstance(thought, str) and thought:
                    reasoning = True
                    out.write(thought, err=True, style="note")
                if choice.delta.content:
                    if reasoning:
                        out.write("\n", err=True)
                        reasoning = False
                    answer.append(choice.delta.content)
                    out.write(choice.delta.content)
    if not out.json_mode:
        out.write("\n")
    records = client.usage.records()
    _report_usage(records[-1] if records else None, out)
    return "".join(answer)


def _report_usage(record: Optional[UsageRecord], out: Output) -> None:
    """The call's tokens and cost: on stderr, or as the last JSON line."""
    if record is None:
        return
    usage = record.usage
    if out.json_mode:
        out.json_line(
            {
                "object": "llm_bridge.usage",
                "provider": record.provider,
                "model": record.model,
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
                "estimated": record.estimated,
                "cost_cny": record.cost_cny,
                "request_id": record.request_id,
            }
        )
        return
    estimated = " (estimated)" if record.estimated else ""
    cost = (
        f"{record.cost_cny:.6f} CNY"
        if record.cost_cny is not None
        else "cost unknown (no price for this model)"
    )
    out.note(
        f"[{record.key}] {usage.prompt_tokens} prompt + {usage.completion_tokens} completion "
        f"tokens{estimated}, {cost}"
    )


def _conversation(
    client: OpenAI, args: argparse.Namespace, messages: list[dict[str, Any]], out: Output
) -> int:
    """Turns read from the terminal until ``/exit`` or end of input; history kept. A failed
    turn is reported and left out of the history, and the conversation goes on."""
    from .._errors import APIError

    with contextlib.suppress(ImportError):  # line editing and recall for input(), if any
        import readline  # noqa: F401
    out.note(f"chat with {args.model}: {' or '.join(EXIT_WORDS)} or Ctrl-D to leave")
    while True:
        try:
            line = input("> ")
        except EOFError:
            out.write("\n")
            return 0
        except KeyboardInterrupt:
            out.write("\n")
            return 0
        text = line.strip()
        if not text:
            continue
        if text in EXIT_WORDS:
            return 0
        if not _is_text(line):
            out.error(NOT_TEXT)
            continue
        messages.append({"role": "user", "content": line})
        try:
            answer = _turn(client, args, messages, out)
        except APIError as error:
            messages.pop()
            out.error(str(error))
            continue
        except KeyboardInterrupt:
            messages.pop()
            out.note("\n(interrupted)")
            continue
        messages.append({"role": "assistant", "content": answer})
