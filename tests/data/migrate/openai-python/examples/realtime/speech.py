"""Write AI-generated speech to a mono 24 kHz PCM WAV; no audio device required."""

from __future__ import annotations

import wave
import base64
import asyncio
import argparse
from pathlib import Path

from openai import AsyncOpenAI


async def speak(text: str, path: Path) -> None:
    async with (
        AsyncOpenAI() as client,
        client.realtime.connect(model="gpt-realtime-2.1-mini") as connection,
    ):
        await connection.session.update(
            session={
                "type": "realtime",
                "output_modalities": ["audio"],
                "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}},
            }
        )
        await connection.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Read aloud exactly: " + text}],
            }
        )
        await connection.response.create()
        audio_bytes = 0
        with wave.open(str(path), "wb") as output:
            output.setnchannels(1)
            output.setsampwidth(2)
            output.setframerate(24000)
            async for event in connection:
                if event.type == "error":
                    raise RuntimeError("Realtime rejected the speech request")
                if event.type == "response.output_audio.delta":
                    data = base64.b64decode(event.delta, validate=True)
                    output.writeframesraw(data)
                    audio_bytes += len(data)
                elif event.type == "response.done":
                    if event.response.status != "completed" or not audio_bytes:
                        raise RuntimeError("Speech generation did not complete")
                    break
            else:
                raise RuntimeError("Realtime closed before completing speech")
    print(f"Saved AI-generated speech: {path.resolve()}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--text", default="The quick brown fox jumps over the lazy dog.")
    parser.add_argument("--output", type=Path, default=Path("speech.wav"))
    args = parser.parse_args()
    await asyncio.wait_for(speak(args.text, args.output), timeout=90)


if __name__ == "__main__":
    asyncio.run(main())
