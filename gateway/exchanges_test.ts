import assert from "node:assert/strict";
import { Exchanges } from "./exchanges.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const ok = (body: string) => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`;

Deno.test("[exchanges] idle only once every request sent on is answered in full", () => {
  const exchanges = new Exchanges();
  assert.equal(exchanges.idle, true, "a new connection owes nothing");
  exchanges.sent("GET");
  exchanges.sent("GET");
  assert.equal(exchanges.idle, false);
  const two = bytes(ok("first") + ok("second"));
  exchanges.received(two.subarray(0, 10)); // inside the first head
  exchanges.received(two.subarray(10, 40)); // the first head's end and part of its body
  assert.equal(exchanges.idle, false);
  exchanges.received(two.subarray(40, two.length - 3)); // the rest of the first, most of the second
  assert.equal(exchanges.idle, false, "three bytes of the second body are still to come");
  exchanges.received(two.subarray(two.length - 3));
  assert.equal(exchanges.idle, true);
  assert.equal(exchanges.following, true);
});

Deno.test("[exchanges] answers without a body: HEAD, 304, 204", () => {
  const exchanges = new Exchanges();
  exchanges.sent("HEAD");
  exchanges.sent("GET");
  exchanges.sent("DELETE");
  exchanges.received(bytes("HTTP/1.1 200 OK\r\ncontent-length: 1648\r\n\r\n"));
  assert.equal(exchanges.idle, false);
  exchanges.received(bytes('HTTP/1.1 304 Not Modified\r\netag: "x"\r\n\r\n'));
  exchanges.received(bytes("HTTP/1.1 204 No Content\r\n\r\n"));
  assert.equal(exchanges.idle, true);
  assert.equal(exchanges.following, true);
});

Deno.test("[exchanges] what it cannot follow stops it for good", () => {
  const cases: [string, (exchanges: Exchanges) => void][] = [
    ["a chunked answer", (e) => {
      e.sent("GET");
      e.received(
        bytes("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
      );
    }],
    ["an answer without a length", (e) => {
      e.sent("GET");
      e.received(bytes("HTTP/1.1 200 OK\r\n\r\nuntil the end"));
    }],
    ["an interim answer", (e) => {
      e.sent("GET");
      e.received(bytes("HTTP/1.1 100 Continue\r\n\r\n"));
    }],
    ["an answer nobody asked for", (e) => e.received(bytes(ok("x")))],
    ["two lengths", (e) => {
      e.sent("GET");
      e.received(bytes("HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\nx"));
    }],
    ["an endless head", (e) => {
      e.sent("GET");
      e.received(bytes(`HTTP/1.1 200 OK\r\nx: ${"y".repeat(20_000)}`));
    }],
  ];
  for (const [what, happen] of cases) {
    const exchanges = new Exchanges();
    happen(exchanges);
    assert.equal(exchanges.following, false, what);
    assert.equal(exchanges.idle, false, `${what}: never idle again`);
    exchanges.sent("GET");
    exchanges.received(bytes(ok("x")));
    assert.equal(exchanges.idle, false, `${what}: not even after more exchanges`);
  }
});

Deno.test("[exchanges] a request's body: not idle until it is sent whole and answered", () => {
  const exchanges = new Exchanges();
  exchanges.sent("POST", 5);
  assert.deepEqual([exchanges.inBody, exchanges.idle], [true, false]);
  exchanges.bodySent(2);
  assert.equal(exchanges.inBody, true, "three bytes to come");
  exchanges.bodySent(3);
  assert.deepEqual([exchanges.inBody, exchanges.idle], [false, false], "its answer is owed");
  exchanges.received(bytes(ok("made")));
  assert.deepEqual([exchanges.idle, exchanges.following], [true, true]);
  exchanges.sent("POST", 0);
  assert.equal(exchanges.inBody, false, "a body that came whole with its head");
  exchanges.received(bytes(ok("")));
  assert.equal(exchanges.idle, true);
});

Deno.test("[exchanges] a read that runs past a body's end stops it for good", () => {
  const exchanges = new Exchanges();
  exchanges.sent("POST", 2);
  exchanges.bodySent(3);
  assert.deepEqual([exchanges.following, exchanges.inBody, exchanges.idle], [false, false, false]);
  exchanges.sent("GET");
  exchanges.received(bytes(ok("x")));
  assert.equal(exchanges.idle, false);
});

Deno.test("[exchanges] an answer that comes before the body is sent whole stops it for good", () => {
  // Deno.serve answers a request its handler answered without reading the body (404, 401, 413)
  // at once, with `connection: close`, and closes: a request after the body is never answered
  // there, so the relay must not answer it either.
  const exchanges = new Exchanges();
  exchanges.sent("POST", 10);
  exchanges.received(
    bytes("HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno"),
  );
  exchanges.bodySent(10);
  assert.deepEqual([exchanges.following, exchanges.idle], [false, false]);
});

Deno.test("[exchanges] an earlier request's answer may come while a later body is still sent", () => {
  const exchanges = new Exchanges();
  exchanges.sent("GET");
  exchanges.sent("POST", 4);
  exchanges.received(bytes(ok("first")));
  exchanges.bodySent(4);
  assert.deepEqual([exchanges.following, exchanges.idle], [true, false]);
  exchanges.received(bytes(ok("made")));
  assert.equal(exchanges.idle, true);
});
