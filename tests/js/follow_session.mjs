// Streams one trading session with the official JavaScript client, rejoins it from an event id,
// and prints what it saw as one line of JSON (tests/test_js_sdk.py reads it).
import { Client } from "@langchain/langgraph-sdk";

const [apiUrl, apiKey, modelId, inputJson] = process.argv.slice(2);
const client = new Client({ apiUrl, apiKey });
const thread = await client.threads.create({ metadata: { model_id: Number(modelId) } });
const input = JSON.parse(inputJson);

const counts = {};
let equity = 0;
let runId = null;
for await (const part of client.runs.stream(thread.thread_id, "trading_session", {
  input,
  streamMode: ["custom", "updates"],
})) {
  counts[part.event] = (counts[part.event] ?? 0) + 1;
  if (part.event === "metadata") runId = part.data.run_id;
  if (part.event === "custom" && part.data.type === "equity") equity += 1;
}

const rejoined = [];
for await (const part of client.runs.joinStream(thread.thread_id, runId, { lastEventId: "3" })) {
  rejoined.push(part.event);
}

const state = await client.threads.getState(thread.thread_id);
console.log(JSON.stringify({ counts, equity, rejoined: rejoined.length, values: state.values }));
