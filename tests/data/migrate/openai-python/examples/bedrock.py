import os

from openai import OpenAI
from openai.providers import bedrock

client = OpenAI(
    provider=bedrock(
        region=os.environ.get("AWS_REGION", "us-west-2"),
    )
)

response = client.responses.create(
    model=os.environ["BEDROCK_RESPONSES_MODEL"],
    input="Say hello!",
)

print(response.output_text)
