"""What keeps the runtime lean, checked as behaviour (timings live in benchmarks/).

Imports that are deferred stay deferred; the per-client caches on the request path (routes,
parsed URLs, shared call options) never change what is sent; the usage ledger's memory
does not grow with traffic while its sums stay exact.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from decimal import Decimal
from typing import Any, Optional

import httpx
import pytest
import respx

from llm_bridge import ModelNotFoundError, OpenAI
from llm_bridge._request_builder import RequestBuilder
from llm_bridge._shapes.completion_usage import CompletionUsage
from llm_bridge.adapters import ADAPTERS, adapter_class
from llm_bridge.testing import FakeQianfan, FakeZhipu
from llm_bridge.usage import UsageLedger, UsageRecord

HELLO = [{"role": "user", "content": "你好"}]


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
    )
    return set(out.stdout.split())


def test_importing_the_client_loads_neither_the_engine_nor_its_tools() -> None:
    # openai (and with it pydantic) is the client itself; the engine, the tables and the
    # tokenizers wait for the first client or call.
    loaded = modules_after("from llm_bridge import OpenAI, AsyncOpenAI")
    for heavy in ("tiktoken", "llm_bridge._engine", "llm_bridge._config"):
        assert heavy not in loaded
    # openai 3.x speaks httpx2; the engine's upstream httpx (0.x) waits for a client.
    assert "httpx" not in loaded


def test_a_client_loads_only_its_own_protocol() -> None:
    loaded = modules_after(
        "from llm_bridge import OpenAI\nOpenAI(provider='zhipu', api_key='id.secret')"
    )
    assert "llm_bridge.adapters.zhipu" in loaded
    for other in ("llm_bridge.adapters.qianfan", "llm_bridge.adapters.dashscope"):
        assert other not in loaded


def test_a_new_client_builds_no_resource_it_was_not_asked_for() -> None:
    # Refusing the WebSocket modes waits for first use: a client made for chat imports
    # none of openai's Realtime or Responses-streaming modules (hundreds of them).
    loaded = modules_after(
        "from llm_bridge import OpenAI\nOpenAI(provider='zhipu', api_key='id.secret')"
    )
    prefixes = ("openai.types.realtime", "openai.lib.streaming.responses")
    assert not [name for name in loaded if name.startswith(prefixes)]


def test_httpx_command_line_client_loads_only_when_it_runs() -> None:
    # rich, pygments and click are installed here (the [cli] extra, uvicorn), as they are
    # for many users: httpx 0.x would import all three with itself.
    loaded = modules_after("import llm_bridge, httpx\nhttpx.Client().close()")
    assert not {"rich", "pygments", "click"} & loaded
    # ... and httpx's CLI still works, from the name httpx bound and from its module.
    for code in (
        "import llm_bridge, httpx\nhttpx.main()",
        "import llm_bridge\nimport httpx._main as m\nm.main()",
    ):
        run = subprocess.run(
            [sys.executable, "-c", f"import sys\nsys.argv = ['httpx', '--help']\n{code}"],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0 and "Usage" in run.stdout, run.stdout + run.stderr
    # httpx imported first: llm-bridge leaves it as it is.
    loaded = modules_after("import httpx, llm_bridge")
    assert "rich" in loaded


def test_streams_tokenizers_and_unused_types_load_only_when_a_call_needs_them() -> None:
    code = (
        "import httpx\nfrom llm_bridge import OpenAI\nfrom llm_bridge.testing import FakeZhipu\n"
        "fake = FakeZhipu(api_key='id.secret').reply('hi')\n"
        "client = OpenAI(provider='zhipu', api_key='id.secret',\n"
        "                http_client=httpx.Client(transport=fake.transport()))\n"
        "out = client.chat.completions.create(model='glm-4-flash',\n"
        "    messages=[{'role': 'user', 'content': 'hi'}], stream=STREAM)\n"
        "assert 'hi' in str(list(out) if STREAM else out)\n"
    )
    loaded = modules_after(code.replace("STREAM", "False"))
    assert not {"llm_bridge._streaming", "llm_bridge.tokens"} & loaded
    unused_types = {
        "llm_bridge._shapes.chat.chat_completion_chunk",
        "llm_bridge._shapes.create_embedding_response",
        "llm_bridge._shapes.embedding",
        "llm_bridge._shapes.model",
    }
    assert not unused_types & loaded  # pydantic classes cost memory to create
    assert "llm_bridge._streaming" in modules_after(code.replace("STREAM", "True"))


@pytest.mark.parametrize("protocol", sorted(ADAPTERS))
def test_every_protocol_names_the_class_that_speaks_it(protocol: str) -> None:
    assert adapter_class(protocol).protocol == protocol


def zhipu_client(fake: FakeZhipu) -> OpenAI:
    return OpenAI(
        provider="zhipu", api_key="id.secret", http_client=httpx.Client(transport=fake.transport())
    )


def test_per_call_options_never_leak_into_later_calls() -> None:
    fake = FakeZhipu(api_key="id.secret")
    client = zhipu_client(fake)
    client.chat.completions.create(
        model="glm-4-flash",
        messages=HELLO,
        extra_headers={"X-Trace": "one"},
        extra_query={"tag": ["a", "b"]},  # list-valued: not cacheable, still sent
    )
    client.chat.completions.create(model="glm-4-flash", messages=HELLO, extra_query={"tag": "c"})
    client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    first, second, third = fake.requests
    assert first.headers["X-Trace"] == "one"
    assert first.url.params.get_list("tag[]") == ["a", "b"]  # openai's list encoding
    assert "X-Trace" not in second.headers and second.url.params.get_list("tag") == ["c"]
    assert "X-Trace" not in third.headers and "tag" not in third.url.params


def test_a_renewed_access_token_goes_into_the_next_url() -> None:
    fake = FakeQianfan("qf-ak", "qf-sk")
    client = OpenAI(
        provider="qianfan",
        api_key="qf-ak",
        secret_key="qf-sk",
        config={"providers": {"qianfan": {"api": "v1"}}},
        http_client=httpx.Client(transport=fake.transport()),
    )
    client.chat.completions.create(model="ernie-speed-8k", messages=HELLO)
    first = fake.requests[-1].url.params["access_token"]
    fake.expire_tokens()
    client.chat.completions.create(model="ernie-speed-8k", messages=HELLO)
    second = fake.requests[-1].url.params["access_token"]
    assert first != second


def test_an_unknown_model_fails_every_time() -> None:
    client = OpenAI(api_key="k", config={"providers": {"zhipu": {}}})
    for _ in range(2):
        with pytest.raises(ModelNotFoundError):
            client.chat.completions.create(model="no-such-model-anywhere", messages=HELLO)


def record(model: str, prompt: int, completion: int) -> UsageRecord:
    usage = CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )
    return UsageRecord("zhipu", model, usage, Decimal(prompt), False, None)


def test_the_ledger_keeps_the_latest_records_and_exact_sums_of_all() -> None:
    ledger = UsageLedger(keep=3)
    for i in range(1, 6):
        ledger.record(record("glm-4-flash" if i % 2 else "glm-4-air", i, 10))
    assert [r.usage.prompt_tokens for r in ledger.records()] == [3, 4, 5]
    assert len(ledger) == len(list(ledger)) == 3
    total = ledger.total()
    assert (total.requests, total.prompt_tokens, total.completion_tokens) == (5, 15, 50)
    assert total.cost_cny == Decimal(15)
    by_model = ledger.by_model()
    assert by_model["zhipu/glm-4-flash"].prompt_tokens == 1 + 3 + 5
    assert by_model["zhipu/glm-4-air"].prompt_tokens == 2 + 4
    by_model["zhipu/glm-4-air"].prompt_tokens = 0  # a copy: the ledger is not changed
    assert ledger.by_model()["zhipu/glm-4-air"].prompt_tokens == 6
    ledger.reset()
    assert len(ledger) == 0 and ledger.records() == [] and ledger.total().requests == 0


ZHIPU_CHAT = "https://open.bigmodel.cn/api/paas/v4/chat/completions"


def sse_body() -> bytes:
    events = [
        {"id": "t", "created": 1, "model": "glm-4", "choices": [{"index": 0, "delta": d}]}
        for d in ({"role": "assistant", "content": "你"}, {"content": "好"})
    ]
    events[-1]["choices"][0]["finish_reason"] = "stop"
    lines = [f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_streams_are_read_raw_only_when_not_content_encoded(encoding: Optional[str]) -> None:
    body = sse_body()
    headers = {"Content-Type": "text/event-stream"}
    if encoding:
        body = gzip.compress(body)
        headers["Content-Encoding"] = encoding
    with respx.mock() as mock:
        mock.post(ZHIPU_CHAT).respond(200, headers=headers, content=body)
        client = OpenAI(provider="zhipu", api_key="id.secret")
        chunks = list(
            client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
        )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "你好"
    assert chunks[-1].choices[0].finish_reason == "stop"


# --------------------------------------------------------------------------- RequestBuilder

BUILD_CASES = [
    ("POST", "https://open.bigmodel.cn/api/paas/v4/chat/completions", {}, 2.5),
    ("POST", "https://aip.baidubce.com/rpc/2.0/x", {"access_token": "24.abc"}, None),
    ("GET", "http://127.0.0.1:8000/v1/models", {"tag": ["a", "b"]}, httpx.Timeout(3, read=9)),
    ("GET", "http://127.0.0.1:8000/v1/models", {"debug": "call"}, 1.0),
]


def built_both_ways(
    client: httpx.Client, method: str, url: str, params: dict, timeout: Any
) -> tuple[httpx.Request, httpx.Request]:
    headers = {"User-Agent": "llm-bridge-cn/test", "Accept": "application/json", "X-A": "1"}
    content = b'{"model":"m"}'
    ours = RequestBuilder().build(
        client, method, url, params=params, headers=headers, content=content, timeout=timeout
    )
    # What the engine did before it had a builder: the call's params over the client's.
    theirs = client.build_request(
        method, url, params=params, headers=headers, content=content, timeout=timeout
    )
    return ours, theirs


def same_request(a: httpx.Request, b: httpx.Request) -> bool:
    return (a.method, a.url, a.headers.raw, a.read(), a.extensions) == (
        b.method,
        b.url,
        b.headers.raw,
        b.read(),
        b.extensions,
    )


@pytest.mark.parametrize(("method", "url", "params", "timeout"), BUILD_CASES)
@pytest.mark.parametrize(
    "client_kwargs",
    [
        {},
        {"headers": {"x-a": "client", "X-Client": "y"}},
        {"cookies": {"session": "s"}},  # state to merge: httpx's build_request does it
        {"params": {"debug": "client"}},
        {"base_url": "http://elsewhere.example"},
    ],
)
def test_built_requests_are_what_httpx_builds(
    method: str, url: str, params: dict, timeout: Any, client_kwargs: dict
) -> None:
    with httpx.Client(**client_kwargs) as client:
        ours, theirs = built_both_ways(client, method, url, params, timeout)
        assert same_request(ours, theirs)


@pytest.mark.parametrize(
    "extra", [{}, {"Host": "proxy.test"}, {"content-length": "13"}, {"Transfer-Encoding": "x"}]
)
def test_requests_built_again_from_the_cache_are_what_httpx_builds(extra: dict) -> None:
    """The second build of a request takes the cached headers (with the Host header first);
    headers of the caller's that httpx would not add itself are kept as httpx keeps them."""
    headers = {"User-Agent": "t", **extra}
    builder = RequestBuilder()
    with httpx.Client(headers={"X-Client": "c"}) as client:
        for content in (b'{"a":1}', b'{"model":"m"}'):
            kwargs: dict[str, Any] = {"params": {}, "content": content, "timeout": 2.0}
            url = "https://example.test/v1/chat"
            ours = builder.build(client, "POST", url, headers=headers, **kwargs)
            theirs = client.build_request("POST", url, headers=headers, **kwargs)
            assert same_request(ours, theirs)


@pytest.mark.parametrize("client_params", [{}, {"debug": "client", "a": "client"}])
def test_a_query_in_the_url_is_kept_and_wins_over_the_clients(client_params: dict) -> None:
    with httpx.Client(params=client_params) as client:
        request = RequestBuilder().build(
            client,
            "GET",
            "http://x.test/p?a=1",
            params={"t": "2"},
            headers={},
            content=None,
            timeout=1.0,
        )
    assert dict(request.url.params) == {**client_params, "a": "1", "t": "2"}


def test_a_relative_url_gets_the_clients_base_url() -> None:
    with httpx.Client(base_url="http://base.test/v1/") as client:
        ours, theirs = built_both_ways(client, "GET", "models", {"a": "1"}, 1.0)
        assert same_request(ours, theirs)
        assert str(ours.url) == "http://base.test/v1/models?a=1"


def test_equal_but_different_query_values_are_not_confused() -> None:
    with httpx.Client() as client:
        builder = RequestBuilder()
        kwargs: dict[str, Any] = {"headers": {}, "content": None, "timeout": 1.0}
        urls = [
            builder.build(client, "GET", "http://x.test/", params={"flag": value}, **kwargs).url
            for value in (True, 1, "1")
        ]
    assert [str(u) for u in urls] == [
        "http://x.test/?flag=true",
        "http://x.test/?flag=1",
        "http://x.test/?flag=1",
    ]


def test_the_builder_sees_a_change_to_the_clients_headers() -> None:
    with httpx.Client() as client:
        builder = RequestBuilder()
        kwargs: dict[str, Any] = {"params": {}, "headers": {}, "content": None, "timeout": 1.0}
        builder.build(client, "GET", "http://x.test/", **kwargs)
        client.headers["X-Later"] = "yes"
        assert builder.build(client, "GET", "http://x.test/", **kwargs).headers["X-Later"] == "yes"


def test_the_type_names_are_openais_own() -> None:
    import openai.types
    import openai.types.chat

    import llm_bridge.types
    import llm_bridge.types.chat

    for ours, theirs in (
        (llm_bridge.types, openai.types),
        (llm_bridge.types.chat, openai.types.chat),
    ):
        for name in ours.__all__:
            if name != "chat":  # (a module of ours that re-exports openai's)
                assert getattr(ours, name) is getattr(theirs, name)
        assert ours.ChatCompletionChunk if ours is llm_bridge.types.chat else ours.chat
    assert llm_bridge.types.Batch is openai.types.Batch  # any name openai has
    assert llm_bridge.types.chat.chat_completion is openai.types.chat.chat_completion
    with pytest.raises(ModuleNotFoundError):
        llm_bridge.types.Nope  # noqa: B018


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
def test_json_answers_are_the_responses_httpx_makes(library: str) -> None:
    """The front door's answers, made without a read through httpx's decoders, are what
    ``Response(content=...)`` makes: headers, body, state, and what reading them gives."""
    from llm_bridge._transport import json_response

    lib = pytest.importorskip(library)
    request = lib.Request("POST", "http://x.test/v1/chat/completions")
    body = '{"id":"c1","text":"你好"}'.encode()
    headers = {"content-type": "application/json", "x-request-id": "c1"}
    ours = json_response(request, dict(headers), body)
    theirs = lib.Response(200, headers=headers, content=body, request=request)
    for response in (ours, theirs):
        assert response.read() == body
    assert ours.headers.raw == theirs.headers.raw
    assert (ours.status_code, ours.content, ours.json(), ours.text) == (
        theirs.status_code,
        theirs.content,
        theirs.json(),
        theirs.text,
    )
    assert (ours.is_closed, ours.is_stream_consumed) == (
        theirs.is_closed,
        theirs.is_stream_consumed,
    )
    assert list(ours.iter_bytes()) == list(theirs.iter_bytes())
    assert ours.request is request
