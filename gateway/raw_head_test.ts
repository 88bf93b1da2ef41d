import assert from "node:assert/strict";
import { isOneHead, readHead, readHeadAndMore } from "./raw_head.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const head = (lines: string[]) => readHead(bytes(`${lines.join("\r\n")}\r\n\r\n`));
const GET = "GET /v1/event-topics?page%5Bsize%5D=5 HTTP/1.1";

Deno.test("[raw head] a plain read: its target as sent and the headers the short way reads", () => {
  assert.deepEqual(
    head([GET, "Host: 127.0.0.1:8080", "accept: application/vnd.api+json", "X-Request-Id: r1"]),
    {
      method: "GET",
      target: "/v1/event-topics?page%5Bsize%5D=5",
      accept: "application/vnd.api+json",
      requestId: "r1",
      hasBody: false,
      plain: true,
      signed: false,
    },
  );
  const browser = head([GET, "Host: a", "Connection: keep-alive", "User-Agent: Mozilla/5.0"]);
  assert.equal(browser?.plain, true, "keep-alive is HTTP/1.1's default");
  const revalidation = head([GET, "Host: a", 'If-None-Match:  "x" ', "User-Agent: curl/8"]);
  assert.equal(revalidation?.ifNoneMatch, '"x"', "surrounding whitespace is not part of a value");
  assert.equal(revalidation?.plain, true, "other headers do not matter");
});

Deno.test("[raw head] only one complete head and nothing after it is read", () => {
  const one = `${GET}\r\nHost: a\r\n\r\n`;
  assert.equal(isOneHead(bytes(one)), true);
  assert.equal(isOneHead(bytes(`${GET}\r\nHost: a\r\n`)), false, "incomplete");
  assert.equal(isOneHead(bytes(one + one)), false, "two pipelined heads");
  assert.equal(isOneHead(bytes(`${GET}\r\nHost: a\r\nContent-Length: 2\r\n\r\nab`)), false);
  assert.equal(isOneHead(bytes(`${GET}\r\nHost: a\r\nX: ${"y".repeat(9000)}\r\n\r\n`)), false);
  assert.equal(readHead(bytes(one + one)), undefined);
});

Deno.test("[raw head] anything not surely HTTP/1.1 is not read at all", () => {
  const refused: [string, string[]][] = [
    ["HTTP/1.0", ["GET / HTTP/1.0", "Host: a"]],
    ["HTTP/2 preface", ["PRI * HTTP/2.0"]],
    ["absolute form", ["GET http://a/v1/events HTTP/1.1", "Host: a"]],
    ["two spaces", ["GET  /v1/events HTTP/1.1", "Host: a"]],
    ["a folded line", [GET, "Host: a", "X-A: b", " c"]],
    ["a line without a colon", [GET, "Host: a", "nonsense"]],
    ["a space before the colon", [GET, "Host : a"]],
    ["a control character", [GET, "Host: a", "X-A: b\u0001"]],
    ["a byte outside ASCII", [GET, "Host: a", "X-A: \u00e9"]],
    ["too many fields", [GET, "Host: a", ...Array.from({ length: 70 }, (_, i) => `X-${i}: v`)]],
  ];
  for (const [what, lines] of refused) assert.equal(head(lines), undefined, what);
});

Deno.test("[raw head] one Authorization and nothing else unusual: signed, never plain", () => {
  const signed = head([GET, "Host: a", "Authorization: JWT x.y.z", "Accept: */*"]);
  assert.deepEqual([signed?.signed, signed?.plain, signed?.authorization], [
    true,
    false,
    "JWT x.y.z",
  ]);
  const neither: [string, string[]][] = [
    ["two Authorizations", [GET, "Host: a", "Authorization: JWT x", "Authorization: JWT y"]],
    ["a cookie beside it", [GET, "Host: a", "Authorization: JWT x", "Cookie: a=b"]],
    ["Proxy-Authorization", [GET, "Host: a", "Proxy-Authorization: Basic x"]],
    ["no Host", [GET, "Authorization: JWT x"]],
    ["Connection: close", [GET, "Host: a", "Authorization: JWT x", "Connection: close"]],
  ];
  for (const [what, lines] of neither) {
    const read = head(lines);
    assert.deepEqual([read?.signed, read?.plain], [false, false], what);
  }
  const post = head([
    "POST /v1/events HTTP/1.1",
    "Host: a",
    "Authorization: JWT x",
    "Content-Length: 2",
  ]);
  assert.deepEqual([post?.signed, post?.hasBody], [false, true], "a body");
});

Deno.test("[raw head] credentials, bodies and connection changes are not plain", () => {
  const notPlain: [string, string[]][] = [
    ["Authorization", [GET, "Host: a", "Authorization: JWT x"]],
    ["Cookie", [GET, "Host: a", "cookie: a=b"]],
    ["Connection: close", [GET, "Host: a", "Connection: close"]],
    ["Connection: upgrade", [GET, "Host: a", "Connection: keep-alive, Upgrade"]],
    ["Expect", [GET, "Host: a", "Expect: 100-continue"]],
    ["Upgrade", [GET, "Host: a", "Upgrade: websocket"]],
    ["no Host", [GET]],
    ["two Hosts", [GET, "Host: a", "Host: b"]],
    ["an odd Host", [GET, "Host: a/b"]],
    ["two Accepts", [GET, "Host: a", "Accept: x/y", "Accept: */*"]],
    ["two request ids", [GET, "Host: a", "X-Request-Id: a", "X-Request-Id: b"]],
  ];
  for (const [what, lines] of notPlain) {
    const read = head(lines);
    assert.equal(read?.plain, false, what);
    assert.equal(read?.hasBody, false, what);
  }
  for (const field of ["Content-Length: 0", "Transfer-Encoding: chunked"]) {
    const read = head(["POST /v1/events HTTP/1.1", "Host: a", field]);
    assert.deepEqual([read?.hasBody, read?.plain], [true, false], field);
  }
});

Deno.test("[raw head] a body is followed past only when one Content-Length alone frames it", () => {
  const POST = "POST /v1/event-topics HTTP/1.1";
  const framed: [string, string[], number][] = [
    ["a write", [POST, "Host: a", "Content-Length: 12"], 12],
    ["a signed write", [POST, "Host: a", "Authorization: JWT x", "content-length: 2"], 2],
    ["an empty body", [POST, "Host: a", "Content-Length: 0"], 0],
    ["leading zeros", [POST, "Host: a", "Content-Length: 007"], 7],
  ];
  for (const [what, lines, length] of framed) {
    const read = head(lines);
    assert.deepEqual([read?.bodyLength, read?.plain, read?.hasBody], [length, false, true], what);
  }
  const signed = head([POST, "Host: a", "Authorization: JWT x", "Content-Length: 2"]);
  assert.equal(signed?.signed, false, "a write is never a signed read");
  const unframed: [string, string[]][] = [
    ["chunked", [POST, "Host: a", "Transfer-Encoding: chunked"]],
    ["both", [POST, "Host: a", "Content-Length: 2", "Transfer-Encoding: chunked"]],
    ["two lengths", [POST, "Host: a", "Content-Length: 2", "Content-Length: 2"]],
    ["a list", [POST, "Host: a", "Content-Length: 2, 2"]],
    ["a sign", [POST, "Host: a", "Content-Length: +2"]],
    ["no number", [POST, "Host: a", "Content-Length: two"]],
    ["too long a number", [POST, "Host: a", "Content-Length: 1234567890123456"]],
    ["a cookie", [POST, "Host: a", "Cookie: a=b", "Content-Length: 2"]],
    ["Expect", [POST, "Host: a", "Expect: 100-continue", "Content-Length: 2"]],
    ["no Host", [POST, "Content-Length: 2"]],
    ["Connection: close", [POST, "Host: a", "Connection: close", "Content-Length: 2"]],
  ];
  for (const [what, lines] of unframed) assert.equal(head(lines)?.bodyLength, undefined, what);
  assert.equal(head([GET, "Host: a"])?.bodyLength, undefined, "no body");
});

Deno.test("[raw head] readHeadAndMore: the head a read starts with, and the bytes after it", () => {
  const write = "POST /v1/event-topics HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n";
  assert.equal(readHeadAndMore(bytes(write))?.more, 0);
  const withBody = readHeadAndMore(bytes(`${write}{}`));
  assert.deepEqual([withBody?.head.bodyLength, withBody?.more], [4, 2]);
  // A CRLFCRLF in the body is the body's: the head ends at the first one.
  const crlf = readHeadAndMore(bytes(`${write}\r\n\r\n`));
  assert.deepEqual([crlf?.head.method, crlf?.more], ["POST", 4]);
  assert.equal(readHeadAndMore(bytes("POST /v1/event-topics HTTP/1.1\r\nHost: a\r\n")), undefined);
  assert.equal(readHeadAndMore(bytes(`GET / HTTP/1.1\nHost: a\r\n\r\n{}`)), undefined, "a bare LF");
});
