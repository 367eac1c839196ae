#!/usr/bin/env -S uv run python

import asyncio
import argparse
from pathlib import Path

from openai import AsyncOpenAI

# gets OPENAI_API_KEY from your environment variables
openai = AsyncOpenAI()


async def main() -> None:
    parser = argparse.ArgumentParser(description="Transcribe a file, or record ten seconds from the microphone")
    parser.add_argument("audio", nargs="?", type=Path)
    args = parser.parse_args()
    if args.audio:
        recording = args.audio
    else:
        from openai.helpers import Microphone

        print("Recording for the next 10 seconds...")
        recording = await Microphone(timeout=10).record()
        print("Recording complete")
    transcription = await openai.audio.transcriptions.create(
        model="gpt-transcribe",
        file=recording,
    )

    print(transcription.text)


if __name__ == "__main__":
    asyncio.run(main())
