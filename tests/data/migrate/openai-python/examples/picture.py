#!/usr/bin/env python
"""Generate an image and save it to picture.png in the working directory."""

import base64
from pathlib import Path

from openai import OpenAI


def main() -> None:
    with OpenAI() as client:
        response = client.images.generate(
            prompt="An astronaut lounging in a tropical resort in space, pixel art",
            model="gpt-image-2.6-flare",
            size="1024x1024",
            output_format="png",
        )
    if not response.data or not response.data[0].b64_json:
        raise RuntimeError("No image was returned")
    path = Path("picture.png")
    path.write_bytes(base64.b64decode(response.data[0].b64_json, validate=True))
    print(f"Saved image: {path.resolve()}")


if __name__ == "__main__":
    main()
