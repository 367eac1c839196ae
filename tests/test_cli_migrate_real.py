"""``llm-bridge migrate`` and ``doctor`` on what real codebases do (a review that migrated
agentai, tinyrag, a RAG chat starter and shell_gpt found each of these):

- ``migrate PATH --write`` writes ``PATH/llm_bridge.toml``, which a program run from
  elsewhere never reads: the command says how it will be found, and ``doctor`` points at
  a config in a parent directory when none is read;
- a method saved in a name (``completion = client.chat.completions.create``, as shell_gpt
  does) is a call site where the name is called, and a method passed on is reported;
- ``doctor`` fails an alias whose provider has no credential;
- small models (``o4-mini``, ``gpt-5-nano``) map to the provider's fast model, and a model
  that thinks by default standing in for one that does not says how to turn thinking off;
- an embedding model asked for ``dimensions=1536`` goes where 1536 is offered, and a model
  or size imported from another module is read there;
- openai's module-level client gets llm-bridge's HTTP client in one added line.

Each codebase is a few lines written to a temporary directory, shaped like the code the
review met.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cli_support import run_cli
from conftest import SUITE_SECRETS

from llm_bridge import load_config
from llm_bridge.testing import FakeZhipu, serve

ZHIPU_KEY = "realmigrate.zhipusecret0123456789ab"
DASHSCOPE_KEY = "sk-realmigrate-0123456789abcdef"
SUITE_SECRETS.update({ZHIPU_KEY, DASHSCOPE_KEY})


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def migrate_json(path: str, *args: str, cwd: Path) -> tuple[int, dict[str, Any]]:
    done = run_cli("migrate", path, "--json", "--no-progress", *args, cwd=cwd)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def sites(data: dict[str, Any], call: str) -> list[dict[str, Any]]:
    return [s for s in data["call_sites"] if s["call"] == call]


def text(entry: dict[str, Any]) -> str:
    return "\n".join(f"{f['severity']}: {f['message']}" for f in entry["findings"])


def prose(config_text: str) -> str:
    """The starter config's comments as one line (they are wrapped at 92 columns)."""
    return " ".join(line.lstrip("#").strip() for line in config_text.splitlines())


# --------------------------------------------------------------------------- 1. finding it


def test_write_into_another_directory_says_how_the_program_finds_the_config(
    tmp_path: Path,
) -> None:
    app = write(tmp_path / "app", {"main.py": "from openai import OpenAI\nOpenAI()\n"})
    done = run_cli("migrate", "app", "--write", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    config = (app / "llm_bridge.toml").resolve()
    assert f"run the program from {config.parent}, or set LLM_BRIDGE_CONFIG={config}" in (
        done.stdout
    )

    # run from PATH itself: the program finds ./llm_bridge.toml, nothing to say
    again = write(tmp_path / "here", {"main.py": "from openai import OpenAI\nOpenAI()\n"})
    code, data = migrate_json(".", "--write", cwd=again)
    assert code == 0
    assert data["config"]["written"] and data["config"]["how_to_use"] is None
    done = run_cli("migrate", ".", "--no-progress", cwd=again)
    assert "LLM_BRIDGE_CONFIG" not in done.stdout


def test_doctor_points_at_a_config_in_a_parent_directory(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "llm_bridge.toml").write_text('[models]\n"gpt-4o" = "dashscope/qwen-plus"\n')
    (repo / "src" / "pkg").mkdir(parents=True)
    env = {"DASHSCOPE_API_KEY": DASHSCOPE_KEY}
    done = run_cli("doctor", "--offline", cwd=repo / "src" / "pkg", env=env)
    assert done.returncode == 0, done.stdout + done.stderr  # a warning, not a failure
    config = (repo / "llm_bridge.toml").resolve()
    (warning,) = [line for line in done.stdout.splitlines() if line.startswith("warn  config:")]
    assert f"{config} exists" in warning
    assert f"run the program from {repo.resolve()}, or set LLM_BRIDGE_CONFIG={config}" in warning

    # read from the working directory: no warning; beyond the repository's root: none either
    done = run_cli("doctor", "--offline", cwd=repo, env=env)
    assert "warn  config" not in done.stdout
    outside = tmp_path / "outer"
    (outside / "inner" / ".git").mkdir(parents=True)
    (outside / "llm_bridge.toml").write_text("[models]\n")
    done = run_cli("doctor", "--offline", cwd=outside / "inner", env=env)
    assert "warn  config" not in done.stdout, done.stdout


# --------------------------------------------------------------------------- 2. saved methods

SHELL_GPT_LIKE = """\
import os
from typing import Any, Callable

completion: Callable[..., Any] = lambda *args, **kwargs: None

if os.environ.get("USE_LITELLM") == "true":
    import litellm

    completion = litellm.completion
else:
    from openai import OpenAI

    client = OpenAI()
    completion = client.chat.completions.create
    gen = client.images.generate


class Handler:
    def get_completion(self, messages):
        return completion(model="gpt-4o", messages=messages, stream=True)

    def picture(self):
        return gen(model="dall-e-3", prompt="a cat")

    def shadowed(self, completion):
        return completion(model="not-openai")
"""


def test_a_method_saved_in_a_name_is_a_call_site_where_the_name_is_called(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"handler.py": SHELL_GPT_LIKE})
    code, data = migrate_json("handler.py", cwd=tmp_path)
    assert code == 1  # the image call blocks, as a direct one would
    (chat,) = sites(data, "chat.completions.create")
    assert chat["line"] == 20 and chat["model"] == "gpt-4o"
    assert chat["target"] == "zhipu/glm-4.7"
    assert "called through a saved method: completion = client.chat.completions.create" in (
        text(chat)
    )
    assert [p["name"] for p in chat["parameters"]] == ["model", "messages", "stream"]
    (image,) = sites(data, "images.generate")
    assert image["line"] == 23 and image["status"] == "blocks"
    assert "does not serve image generation" in text(image)
    assert data["summary"]["blocks"] == 1
    assert all(s["line"] != 26 for s in data["call_sites"])  # a parameter, not the method


def test_a_method_passed_on_is_reported_as_not_analysed(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app.py": "import functools\nfrom openai import OpenAI\nclient = OpenAI()\n"
            "ask = functools.partial(client.chat.completions.create, model='gpt-4o')\n"
            "draw = functools.partial(client.images.generate, model='dall-e-3')\n"
            "client.chat.completions.create.return_value = None  # a test's mock: not a use\n"
        },
    )
    code, data = migrate_json(".", cwd=tmp_path)
    assert code == 1
    (chat,) = sites(data, "chat.completions.create")
    assert chat["line"] == 4 and chat["status"] == "ok"
    assert "method referenced, call not analysed" in text(chat)
    (image,) = sites(data, "images.generate")
    assert image["status"] == "blocks"
    assert data["summary"]["not_analysed"] == 2
    done = run_cli("migrate", ".", "--no-progress", cwd=tmp_path)
    assert "2 openai methods referenced but not called" in done.stdout


# --------------------------------------------------------------------------- 3. doctor aliases


def test_doctor_fails_an_alias_whose_provider_has_no_credential(tmp_path: Path) -> None:
    env = {"DASHSCOPE_API_KEY": DASHSCOPE_KEY}
    (tmp_path / "llm_bridge.toml").write_text('[models]\n"gpt-4o-mini" = "zhipu/glm-4-flash"\n')
    done = run_cli("doctor", "--offline", cwd=tmp_path, env=env)
    assert done.returncode == 1, done.stdout
    (fail,) = [line for line in done.stdout.splitlines() if line.startswith("fail  models:")]
    assert "'gpt-4o-mini'" in fail and "ConfigError" in fail and "ZHIPUAI_API_KEY" in fail

    # a fallback list whose first target has a key: a warning for the later one
    (tmp_path / "llm_bridge.toml").write_text(
        '[models]\n"gpt-4o-mini" = ["dashscope/qwen-flash", "zhipu/glm-4-flash"]\n'
    )
    done = run_cli("doctor", "--offline", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout
    assert any(
        line.startswith("warn  models:") and "zhipu/glm-4-flash" in line
        for line in done.stdout.splitlines()
    )
    # ... whose first target has none: a missing key does not fall back, every call fails
    (tmp_path / "llm_bridge.toml").write_text(
        '[models]\n"gpt-4o-mini" = ["zhipu/glm-4-flash", "dashscope/qwen-flash"]\n'
    )
    done = run_cli("doctor", "--offline", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 1
    found = [f for f in json.loads(done.stdout)["findings"] if f["check"] == "models"]
    assert [f["verdict"] for f in found] == ["fail"]

    # every target served: one ok line
    (tmp_path / "llm_bridge.toml").write_text('[models]\n"gpt-4o-mini" = "dashscope/qwen-flash"\n')
    done = run_cli("doctor", "--offline", cwd=tmp_path, env=env)
    assert done.returncode == 0 and "ok    models: 1 alias(es)" in done.stdout


# --------------------------------------------------------------------------- 4. size and kind


def test_small_models_map_to_the_fast_model_and_thinking_is_explained(tmp_path: Path) -> None:
    names = ["gpt-5-nano", "gpt-5-mini", "gpt-5.4-mini", "o4-mini", "gpt-4.1-mini", "gpt-4o"]
    calls = "".join(f"c.chat.completions.create(model={n!r}, messages=m)\n" for n in names)
    write(tmp_path, {"app.py": "from openai import OpenAI\nc = OpenAI()\nm = []\n" + calls})
    out = tmp_path / "starter.toml"
    run_cli("migrate", ".", "--config-out", str(out), "--no-progress", cwd=tmp_path)
    config = load_config(out)
    for small in names[:-1]:
        assert config.aliases[small] == ["zhipu/glm-4-flash"], small
    assert config.aliases["gpt-4o"] == ["zhipu/glm-4.7"]
    comments = prose(out.read_text(encoding="utf-8"))
    assert "o4-mini (app.py:7): a small reasoning model, mapped by size to a fast model." in (
        comments
    )
    assert 'o4-mini reasons, glm-4-flash does not think; for thinking: "zhipu/' in comments
    assert (
        "gpt-4o does not reason, but glm-4.7 thinks by default (slower, more output tokens): "
        'reasoning_effort="none" turns thinking off.' in comments
    )
    assert "from 2/8 CNY/M tokens in/out (tiered by length)" in comments


def test_reasoning_effort_none_turns_glm_4_7_thinking_off(tmp_path: Path) -> None:
    """What the starter config's comment promises, against the fake."""
    import llm_bridge

    fake = FakeZhipu(api_key=ZHIPU_KEY)
    with serve(fake) as server:
        config = load_config(
            {
                "models": {"gpt-4o": "zhipu/glm-4.7"},
                "providers": {
                    "zhipu": {"api_key": ZHIPU_KEY, "base_url": server.url + "/api/paas/v4"}
                },
            }
        )
        client = llm_bridge.OpenAI(config=config)
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], reasoning_effort="none"
        )
    assert json.loads(fake.requests[-1].content)["thinking"] == {"type": "disabled"}


# --------------------------------------------------------------------------- 5. dimensions

RAG_CONFIG = """\
import os
OPENAI_API_KEY = os.getenv("OPENAI_API_KEY")
EMBEDDING_MODEL = "text-embedding-3-small"
EMBEDDING_DIMENSIONS = 1536
CHAT_MODEL = "gpt-4o-mini"
"""

RAG_MAIN = """\
import openai

from rag_starter.config import CHAT_MODEL, EMBEDDING_DIMENSIONS, EMBEDDING_MODEL, OPENAI_API_KEY

openai.api_key = OPENAI_API_KEY


def embed(text):
    return openai.embeddings.create(
        input=text, model=EMBEDDING_MODEL, dimensions=EMBEDDING_DIMENSIONS
    ).data[0].embedding


def ask(question):
    answer = openai.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": question}]
    )
    return answer.choices[0].message.content


if __name__ == "__main__":
    print(ask("hi"))
    print(len(embed("hi")))
"""


def test_an_embedding_model_goes_where_the_dimensions_asked_for_are_offered(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "emb.py": "from openai import OpenAI\nclient = OpenAI()\n"
            "client.embeddings.create(model='text-embedding-3-small', input='x', "
            "dimensions=1536)\n"
            "def f(size):\n"
            "    return client.embeddings.create(model='text-embedding-3-large', input='x', "
            "dimensions=size)\n"
        },
    )
    code, data = migrate_json(".", cwd=tmp_path)
    assert code == 0, data
    assert data["models"]["text-embedding-3-small"]["target"] == "dashscope/text-embedding-v4"
    comments = prose(data["config"]["text"])
    assert "Chosen for the 1536 dimensions the code asks for (not offered by zhipu/" in comments
    assert "dimensions not a literal (size): unchecked." in comments
    small, large = sites(data, "embeddings.create")
    assert small["status"] == "ok" and small["target"] == "dashscope/text-embedding-v4"
    assert "dimensions not a literal (size): unchecked" in text(large)


def test_a_model_and_size_imported_from_another_module_are_read_there(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "rag_starter/__init__.py": "",
            "rag_starter/config.py": RAG_CONFIG,
            "rag_starter/main.py": RAG_MAIN,
        },
    )
    code, data = migrate_json(".", cwd=tmp_path)
    assert code == 0, json.dumps(data["call_sites"], indent=1)
    (embed,) = sites(data, "embeddings.create")
    assert embed["model"] == "text-embedding-3-small"
    assert embed["target"] == "dashscope/text-embedding-v4"  # offers the 1536 asked for
    assert "EMBEDDING_MODEL is 'text-embedding-3-small' (rag_starter/config.py:3)" in text(embed)
    assert "not a literal" not in text(embed)
    (chat,) = sites(data, "chat.completions.create")
    assert chat["model"] == "gpt-4o-mini" and chat["target"] == "zhipu/glm-4-flash"


# --------------------------------------------------------------------------- 6. module client


def test_the_module_level_client_gets_llm_bridges_http_client(tmp_path: Path) -> None:
    root = write(
        tmp_path / "rag",
        {
            "rag_starter/__init__.py": "",
            "rag_starter/config.py": RAG_CONFIG.replace("1536", "1024"),
            "rag_starter/main.py": RAG_MAIN,
        },
    )
    code, data = migrate_json(".", "--write", cwd=root)
    assert code == 0, json.dumps(data["call_sites"], indent=1)  # nothing blocks now
    for entry in data["call_sites"]:
        assert entry["status"] == "changes"
        assert "the rewrite adds openai.http_client = llm_bridge.http_client()" in text(entry)
    main = (root / "rag_starter" / "main.py").read_text()
    assert main.startswith(
        "import openai\nimport llm_bridge\nopenai.http_client = llm_bridge.http_client()\n"
    )
    # a second run has nothing left to rewrite, and the calls are noted as routed
    code, again = migrate_json(".", cwd=root)
    assert again["rewrites"] == [] and code == 0
    assert "this file sets openai.http_client" in text(again["call_sites"][0])

    fake = FakeZhipu(api_key=ZHIPU_KEY)
    with serve(fake) as server:
        done = subprocess.run(
            [sys.executable, "-m", "rag_starter.main"],
            cwd=root,
            env={
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(Path(__file__).parent.parent),
                "ZHIPUAI_API_KEY": ZHIPU_KEY,
                "ZHIPUAI_BASE_URL": server.url + "/api/paas/v4",
                "OPENAI_API_KEY": "unused-by-llm-bridge",  # openai wants one set
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["(offline fake glm-4-flash) You said: hi", "1024"]
    assert [r.url.path for r in fake.requests] == [
        "/api/paas/v4/chat/completions",
        "/api/paas/v4/embeddings",
    ]


def test_a_module_client_the_rewrite_cannot_reach_says_which_line_to_add(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "app.py": "def ask():\n    import openai\n"
            "    return openai.chat.completions.create(model='gpt-4o', messages=[])\n"
        },
    )
    code, data = migrate_json(".", cwd=tmp_path)
    assert code == 1
    (chat,) = data["call_sites"]
    assert chat["status"] == "blocks"
    assert "add `openai.http_client = llm_bridge.http_client()`" in text(chat)
    assert data["rewrites"] == []
