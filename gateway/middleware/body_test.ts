import assert from "node:assert/strict";
import { route } from "@shared/bus_endpoints.ts";
import {
  BadRequestError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from "@shared/errors.ts";
import { catalog } from "@shared/subjects.ts";
import { firstError, JSONAPI, testGateway } from "../_test_utils.ts";
import { hasBody, readJsonBody } from "./body.ts";

function streamOf(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 10) controller.enqueue(bytes.slice(i, i + 10));
      controller.close();
    },
  });
}

Deno.test("[gateway] readJsonBody counts streamed bytes against the limit", async () => {
  const small = new Request("http://x/", { method: "POST", body: streamOf('{"a":1}') });
  assert.deepEqual(await readJsonBody(small, 100), { a: 1 });
  const large = new Request("http://x/", {
    method: "POST",
    body: streamOf(JSON.stringify({ a: "x".repeat(200) })),
  });
  await assert.rejects(readJsonBody(large, 100), PayloadTooLargeError);
});

// Found by a review: a gzip body was read as is and refused as "not valid UTF-8" (400).
Deno.test("[gateway] a body in a content coding is a 415 naming the header", async () => {
  const gzipped = new Request("http://x/", {
    method: "POST",
    body: '{"a":1}',
    headers: { "Content-Encoding": "gzip" },
  });
  const error = await readJsonBody(gzipped, 100).catch((e) => e);
  assert.ok(error instanceof UnsupportedMediaTypeError, String(error));
  assert.deepEqual(error.toObjects()[0].source, { header: "Content-Encoding" });
  const identity = new Request("http://x/", {
    method: "POST",
    body: '{"a":1}',
    headers: { "Content-Encoding": "identity" },
  });
  assert.deepEqual(await readJsonBody(identity, 100), { a: 1 });
});

// Found by a review: 1e999 parsed as Infinity and reached the service as null.
Deno.test("[gateway] a number too large for a double is a 400 naming its member", async () => {
  const request = new Request("http://x/", {
    method: "POST",
    body: '{"data":{"attributes":{"quantity":1e999}}}',
  });
  const error = await readJsonBody(request, 1000).catch((e) => e);
  assert.ok(error instanceof BadRequestError, String(error));
  assert.deepEqual(error.toObjects()[0].source, { pointer: "/data/attributes/quantity" });
  // A long mantissa with a small exponent overflows too (a review of a regex pre-check).
  for (const n of ["9".repeat(400), `${"1".repeat(211)}e99`, `-${"1".repeat(260)}E50`]) {
    const body = `{"n":[${n}]}`;
    const refused = await readJsonBody(new Request("http://x/", { method: "POST", body }), 2000)
      .catch((e) => e);
    assert.ok(refused instanceof BadRequestError, n);
    assert.deepEqual(refused.toObjects()[0].source, { pointer: "/n/0" });
  }
  const fine = new Request("http://x/", { method: "POST", body: '{"n":1e300,"m":12345}' });
  assert.deepEqual(await readJsonBody(fine, 1000), { n: 1e300, m: 12345 });
});

Deno.test("[gateway] readJsonBody points malformed bodies at the whole document", async () => {
  const request = new Request("http://x/", { method: "POST", body: "{" });
  const error = await readJsonBody(request, 100).catch((e) => e);
  assert.ok(error instanceof BadRequestError);
  assert.deepEqual(error.toObjects()[0].source, { pointer: "" });
});

Deno.test("[gateway] POST /v1/event-topics checks the body", async (t) => {
  await using gw = await testGateway({ env: { BODY_LIMIT_BYTES: "100" } });
  await gw.serve("catalog", [route(catalog.eventTopics.create, () => ({ status: 201, body: {} }))]);
  const post = (body: BodyInit, headers: Record<string, string> = {}) =>
    gw.app.request("/v1/event-topics", {
      method: "POST",
      headers: { "Content-Type": JSONAPI, ...headers },
      body,
    });

  await t.step("413 by Content-Length", async () => {
    const text = JSON.stringify({ data: { attributes: { name: "x".repeat(200) } } });
    const response = await post(text, { "Content-Length": String(text.length) });
    assert.equal(response.status, 413);
    assert.equal((await firstError(response)).code, "payload_too_large");
  });
  await t.step("413 by the bytes read", async () => {
    const response = await post(streamOf(JSON.stringify({ name: "x".repeat(200) })));
    assert.equal(response.status, 413);
  });
  await t.step("400 for malformed JSON", async () => {
    const response = await post('{"data": ');
    assert.equal(response.status, 400);
    const error = await firstError(response);
    assert.equal(error.code, "bad_request");
    assert.deepEqual(error.source, { pointer: "" });
  });
  await t.step("400 for an unpaired surrogate, which would be stored as U+FFFD", async () => {
    const response = await post('{"data":{"type":"event-topic","attributes":{"name":"a\\ud800"}}}');
    assert.equal(response.status, 400);
    assert.match(String((await firstError(response)).detail), /unpaired surrogate/);
  });
  for (const text of ["[1,2]", '"text"', "null", "42", ""]) {
    await t.step(`400 for a body that is not an object: ${text || "(empty)"}`, async () => {
      const response = await post(text);
      assert.equal(response.status, 400);
      assert.deepEqual((await firstError(response)).source, { pointer: "" });
    });
  }
  await t.step("a small object passes", async () => {
    const response = await post(JSON.stringify({ data: { type: "event-topic" } }));
    assert.equal(response.status, 201);
  });
});

Deno.test("[gateway] hasBody decides by the framing headers, not by the stream", async (t) => {
  await t.step("no length and no chunking: no body", () => {
    assert.equal(hasBody(new Request("http://x/", { method: "DELETE" })), false);
  });
  await t.step("Content-Length 0: no body", () => {
    const request = new Request("http://x/", {
      method: "DELETE",
      headers: { "Content-Length": "0" },
    });
    assert.equal(hasBody(request), false);
  });
  await t.step("a declared length or chunking: a body", () => {
    const sized = new Request("http://x/", {
      method: "DELETE",
      headers: { "Content-Length": "2" },
    });
    const chunked = new Request("http://x/", {
      method: "DELETE",
      headers: { "Transfer-Encoding": "chunked" },
    });
    assert.equal(hasBody(sized), true);
    assert.equal(hasBody(chunked), true);
  });
});
