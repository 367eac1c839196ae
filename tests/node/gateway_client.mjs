// The official openai npm package against `llm-bridge serve`: chat, a stream, tools,
// embeddings and an error. Prints one JSON object the Python test asserts on.
// Usage: GATEWAY_URL=http://127.0.0.1:PORT/v1 GATEWAY_KEY=sk-lb-... node gateway_client.mjs
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.GATEWAY_URL,
  apiKey: process.env.GATEWAY_KEY,
  maxRetries: 0,
  timeout: 20_000,
});
const model = process.env.GATEWAY_MODEL || "fast";
const out = {};

const chat = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "你好 from node" }],
});
out.chat = {
  object: chat.object,
  content: chat.choices[0].message.content,
  finish_reason: chat.choices[0].finish_reason,
  usage: chat.usage,
};

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "stream please" }],
  stream: true,
  stream_options: { include_usage: true },
});
let text = "";
let chunks = 0;
let finish = null;
for await (const chunk of stream) {
  chunks += 1;
  for (const choice of chunk.choices) {
    text += choice.delta?.content ?? "";
    finish = choice.finish_reason ?? finish;
  }
}
out.stream = { chunks, text, finish_reason: finish };

const tools = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "weather in Beijing?" }],
  tools: [
    {
      type: "function",
      function: {
        name: "get_weather",
        parameters: { type: "object", properties: { city: { type: "string" } } },
      },
    },
  ],
});
const call = tools.choices[0].message.tool_calls?.[0];
out.tools = {
  finish_reason: tools.choices[0].finish_reason,
  name: call?.function?.name,
  arguments: call ? JSON.parse(call.function.arguments) : null,
};

const embeddings = await client.embeddings.create({
  model: process.env.GATEWAY_EMBEDDING_MODEL || "embedding-3",
  input: ["一", "二"],
});
out.embeddings = {
  count: embeddings.data.length,
  dimensions: embeddings.data[0].embedding.length,
  indexes: embeddings.data.map((d) => d.index),
};

try {
  await client.chat.completions.create({
    model: "not-allowed-model",
    messages: [{ role: "user", content: "hi" }],
  });
  out.forbidden = { status: null };
} catch (error) {
  out.forbidden = {
    status: error.status,
    class: error.constructor.name,
    code: error.code ?? error.error?.code ?? null,
  };
}

console.log(JSON.stringify(out));
