import assert from "node:assert/strict";
import { headers } from "@nats-io/nats-core";
import { fitToBus, ReplyTooLargeError } from "./reply_size.ts";
import { InternalError } from "./errors.ts";

const encoder = new TextEncoder();
const answerOf = (document: unknown, status = 200) => {
  const h = headers();
  h.set("Status", String(status));
  h.set("Foreign-Includes", '{"event":["1"]}');
  return { status, headers: h, body: encoder.encode(JSON.stringify(document)) };
};
const big = {
  data: { type: "event", id: "1" },
  included: [{ type: "ticket", id: "2", x: "y".repeat(5000) }],
};

Deno.test("[reply_size] what fits is sent as it is", () => {
  const answer = answerOf(big);
  assert.equal(fitToBus(answer, { limit: 10_000, http: { method: "GET" } }), answer);
});

Deno.test("[reply_size] a read that does not fit is a 400 naming the sizes; an rpc answer a 500", () => {
  assert.throws(
    () => fitToBus(answerOf(big), { limit: 1000, http: { method: "GET" } }),
    (error) => error instanceof ReplyTooLargeError && /more than the 0\.00 MiB/.test(error.message),
  );
  assert.throws(() => fitToBus(answerOf(big), { limit: 1000 }), InternalError);
});

Deno.test("[reply_size] a done write that does not fit keeps its data, says why, merges nothing", () => {
  const fitted = fitToBus(answerOf(big, 201), { limit: 1000, http: { method: "POST" } });
  const document = JSON.parse(new TextDecoder().decode(fitted.body));
  assert.deepEqual(document.data, big.data);
  assert.equal(document.included, undefined);
  assert.match(document.meta["include-unavailable"], /^The change is done/);
  assert.equal(fitted.status, 201);
  assert.equal(fitted.headers.has("Foreign-Includes"), false);
  // Its data alone too large: still done, with the identifier only.
  const least = fitToBus(answerOf({ data: { type: "event", id: "1", x: "y".repeat(5000) } }, 201), {
    limit: 1000,
    http: { method: "POST" },
  });
  const reduced = JSON.parse(new TextDecoder().decode(least.body));
  assert.deepEqual(reduced.data, { type: "event", id: "1" });
  assert.match(reduced.meta["include-unavailable"], /^The change is done/);
  // A failed write is not done: its too-large answer is an error like a read's.
  assert.throws(
    () => fitToBus(answerOf(big, 409), { limit: 1000, http: { method: "POST" } }),
    ReplyTooLargeError,
  );
});

// Found by a review: a fixed 64 KiB allowance for headers let 74 kB of cache tags through.
Deno.test("[reply_size] large headers are counted", () => {
  const answer = answerOf({ data: [] });
  answer.headers.set("Cache-Tags", "event:1 ".repeat(10_000));
  assert.throws(
    () => fitToBus(answer, { limit: 70_000, http: { method: "GET" } }),
    ReplyTooLargeError,
  );
});
