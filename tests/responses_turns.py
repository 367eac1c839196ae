"""A two-turn Responses conversation through two gateways sharing a store (Redis or a
SQLite state file): what the sharing tests of both stores check alike."""

from __future__ import annotations

from typing import Any

import httpx
from test_gateway_app import AUTH, seen

USER_1 = {"role": "user", "content": "西湖在哪里？"}
ANSWER_1 = {"role": "assistant", "content": "西湖在杭州。"}
USER_2 = {"role": "user", "content": "它怎么样？"}


async def create(client: httpx.AsyncClient, text: str, **more: Any) -> httpx.Response:
    body = {"model": "fast", "input": text, **more}
    return seen(await client.post("/v1/responses", headers=AUTH, json=body))


async def continued_elsewhere(
    one: httpx.AsyncClient, two: httpx.AsyncClient, made: httpx.Response, fake: Any
) -> httpx.Response:
    """The response ``made`` through ``one`` continued, retrieved, listed and deleted
    through ``two``; then what ``one`` answers for it (the caller checks the 404's
    message names its store)."""
    rid = made.json()["id"]
    follow = await create(two, "它怎么样？", previous_response_id=rid)
    assert follow.status_code == 200, follow.text
    assert fake.last_json["messages"] == [USER_1, ANSWER_1, USER_2]

    got = seen(await two.get(f"/v1/responses/{rid}", headers=AUTH))
    assert got.status_code == 200 and got.json()["output"] == made.json()["output"]
    items = seen(await two.get(f"/v1/responses/{rid}/input_items", headers=AUTH)).json()
    assert [i["content"][0]["text"] for i in items["data"]] == ["西湖在哪里？"]

    deleted = seen(await two.delete(f"/v1/responses/{rid}", headers=AUTH))
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    gone = await one.get(f"/v1/responses/{rid}", headers=AUTH)
    assert gone.status_code == 404
    return gone
