import asyncio
from typing import List

import rich
from pydantic import BaseModel

from openai import AsyncOpenAI


class Step(BaseModel):
    explanation: str
    output: str


class MathResponse(BaseModel):
    steps: List[Step]
    final_answer: str


async def main() -> None:
    client = AsyncOpenAI()
    response_id = None
    last_sequence = -1
    async with client.responses.stream(
        input="solve 8x + 31 = 2",
        model="gpt-6.2-sol",
        text_format=MathResponse,
        background=True,
    ) as stream:
        async for event in stream:
            last_sequence = event.sequence_number
            if event.type == "response.created":
                response_id = event.response.id
            if "output_text" in event.type:
                rich.print(event)
            if event.sequence_number == 10:
                break

    print("Interrupted. Continuing...")

    assert response_id is not None
    async with client.responses.stream(
        response_id=response_id,
        starting_after=last_sequence,
        text_format=MathResponse,
    ) as stream:
        async for event in stream:
            if "output_text" in event.type:
                rich.print(event)

        rich.print(await stream.get_final_response())


if __name__ == "__main__":
    asyncio.run(main())
