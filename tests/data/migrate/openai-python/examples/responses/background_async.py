import asyncio

import rich

from openai import AsyncOpenAI


async def main() -> None:
    client = AsyncOpenAI()
    response_id = None
    last_sequence = -1

    async with await client.responses.create(
        input="solve 8x + 31 = 2",
        model="gpt-6.2-sol",
        background=True,
        stream=True,
    ) as stream:
        async for event in stream:
            last_sequence = event.sequence_number
            if event.type == "response.created":
                response_id = event.response.id
            if event.type == "response.completed":
                print(event.response.output_text)
            if "output_text" in event.type:
                rich.print(event)
            if event.sequence_number == 10:
                break

    print("Interrupted. Continuing...")

    assert response_id is not None
    async with await client.responses.retrieve(
        response_id=response_id,
        stream=True,
        starting_after=last_sequence,
    ) as stream:
        async for event in stream:
            if event.type == "response.completed":
                print(event.response.output_text)
            if "output_text" in event.type:
                rich.print(event)


if __name__ == "__main__":
    asyncio.run(main())
