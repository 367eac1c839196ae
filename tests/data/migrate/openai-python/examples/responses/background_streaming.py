#!/usr/bin/env -S uv run python
from typing import List

import rich
from pydantic import BaseModel

from openai import OpenAI


class Step(BaseModel):
    explanation: str
    output: str


class MathResponse(BaseModel):
    steps: List[Step]
    final_answer: str


client = OpenAI()
response_id = None
last_sequence = -1
with client.responses.stream(
    input="solve 8x + 31 = 2",
    model="gpt-6.2-sol",
    text_format=MathResponse,
    background=True,
) as stream:
    for event in stream:
        last_sequence = event.sequence_number
        if event.type == "response.created":
            response_id = event.response.id
        if "output_text" in event.type:
            rich.print(event)
        if event.sequence_number == 10:
            break

print("Interrupted. Continuing...")

assert response_id is not None
with client.responses.stream(
    response_id=response_id,
    starting_after=last_sequence,
    text_format=MathResponse,
) as stream:
    for event in stream:
        if "output_text" in event.type:
            rich.print(event)

    rich.print(stream.get_final_response())
