"""How close llm-bridge's streams are to the least a translating client can do.

`run.py` compares the engine's streams with raw httpx, which only splits lines and parses
JSON. An engine that yields OpenAI chunk models must also build and validate one model
per event. This script measures that floor: a hand-written loop per wire format that
reads the same stream with httpx, cuts events, parses each one, builds the OpenAI chunk
and validates it into `ChatCompletionChunk`, with no error handling, no usage
bookkeeping and no generality. The llm-bridge row is the engine's chunk stream itself
(``engine.chat(...).parsed``, iterated; not written back as SSE as `run.py`'s gateway
path does). What it costs above the floor is the price of its general decoder, parsers
and stream layer.

Rows are interleaved: each round streams raw httpx, the floor and the engine once each,
in rotated order, and the ratios are medians over rounds of one row's time divided by
raw httpx's in the same round. It prints only (the budget lives in `run.py`).

    python benchmarks/stream_floor.py [--rounds N] [--chunks N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).parent))

import run as bench  # this folder's benchmark helpers
from server import BenchServer


def floor_stream(wire: str, url: str) -> Callable[[int], int]:
    """The least-work loop for one wire format: cut, parse, build, validate."""
    import httpx
    from pydantic_core import from_json

    from llm_bridge._shapes.chat import ChatCompletionChunk  # (the models the engine fills)

    validate = ChatCompletionChunk.__pydantic_validator__.validate_python
    validate_json = ChatCompletionChunk.__pydantic_validator__.validate_json
    client = httpx.Client()
    su, sh, sb = bench.wire_request(wire, url, True)  # the raw row's (Qianfan's token included)
    model = bench.WIRES[wire].model

    def chunk_of(data: bytes, first: bool) -> Any:
        if wire in ("openai", "zhipu", "dashscope-compat"):  # already OpenAI's shape
            return validate_json(data)
        event = from_json(data)
        if wire == "qianfan":
            content, finish, rid = (
                event["result"],
                ("stop" if event["is_end"] else None),
                event["id"],
            )
        else:  # dashscope
            choice = event["output"]["choices"][0]
            content, rid = choice["message"]["content"], event["request_id"]
            finish = None if choice["finish_reason"] == "null" else choice["finish_reason"]
        delta = {"role": "assistant", "content": content} if first else {"content": content}
        return validate(
            {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    def stream(n: int) -> int:
        chunks = 0
        headers = {**sh, **bench.chunks_header(n)}
        with client.stream("POST", su, json=sb, headers=headers) as response:
            buffer = b""
            for piece in response.iter_raw():
                buffer = buffer + piece if buffer else piece
                blocks = buffer.split(b"\n\n")
                buffer = blocks.pop()
                for block in blocks:
                    data = block[block.find(b"data:") + 5 :].lstrip()
                    if data == b"[DONE]":
                        continue
                    chunk_of(data, chunks == 0)
                    chunks += 1
        return chunks

    return stream


def engine_stream(wire: str, url: str) -> Callable[[int], int]:
    """The engine's own chunk stream, as the transport gets it (before any SSE is written)."""
    engine, _ = bench.bridge_engine(wire, url, sync=True)
    params = json.loads(bench.openai_request(wire, True))

    def stream(n: int) -> int:
        chunks = engine.chat(params, engine.options(extra_headers=bench.chunks_header(n))).parsed
        with chunks:
            return sum(1 for _ in chunks)

    return stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--chunks", type=int, default=bench.STREAM_CHUNKS)
    args = parser.parse_args()
    print(f"{args.chunks}-chunk streams, median of {args.rounds} interleaved rounds")
    print("| wire format | floor × raw | llm-bridge × raw | llm-bridge × floor |")
    print("| --- | ---: | ---: | ---: |")
    with BenchServer() as server:
        for wire in bench.WIRES:
            rows = {
                "raw": bench.make_row("raw", wire, server.url).stream,
                "floor": floor_stream(wire, server.url),
                "lb": engine_stream(wire, server.url),
            }
            for run in rows.values():  # warm up: connections, token, caches
                run(args.chunks)
            times: dict[str, list[int]] = {name: [] for name in rows}
            for r in range(args.rounds):
                for name in bench.rotated(list(rows), r):
                    start = time.perf_counter_ns()
                    rows[name](args.chunks)
                    times[name].append(time.perf_counter_ns() - start)
            print(
                f"| {wire} | {paired(times, 'floor', 'raw'):.2f}× "
                f"| {paired(times, 'lb', 'raw'):.2f}× | {paired(times, 'lb', 'floor'):.2f}× |"
            )


def paired(times: dict[str, list[int]], a: str, b: str) -> float:
    """The median over rounds of row ``a``'s time divided by row ``b``'s in that round."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


if __name__ == "__main__":
    main()
