import openai

# will default to `os.environ['OPENAI_API_KEY']` if not explicitly set
# openai.api_key is read from OPENAI_API_KEY.

# all client options can be configured just like the `OpenAI` instantiation counterpart
openai.default_headers = {"x-foo": "true"}

# all API calls work in the exact same fashion as well
stream = openai.chat.completions.create(
    model="gpt-6.2-sol",
    messages=[
        {
            "role": "user",
            "content": "How do I output all files in a directory using Python?",
        },
    ],
    stream=True,
)

for chunk in stream:
    if not chunk.choices:
        continue
    print(chunk.choices[0].delta.content or "", end="", flush=True)

print()
