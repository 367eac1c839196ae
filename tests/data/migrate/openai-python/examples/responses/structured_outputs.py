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

rsp = client.responses.parse(
    input="solve 8x + 31 = 2",
    model="gpt-6.2-sol",
    text_format=MathResponse,
)

# Reasoning models may emit reasoning items before the parsed message.
if rsp.output_parsed is None:
    raise RuntimeError("The response did not contain a parsed answer")
rich.print(rsp.output_parsed)
print("answer:", rsp.output_parsed.final_answer)
