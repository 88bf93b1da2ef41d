import assert from "node:assert/strict";
import { route } from "@shared/bus_endpoints.ts";
import { catalog, payments } from "@shared/subjects.ts";
import { firstError, JSONAPI, testGateway, token } from "./_test_utils.ts";
import { checkJsonBytes, MAX_JSON_DEPTH } from "./middleware/body.ts";

const encoder = new TextEncoder();

function nested(depth: number): string {
  return `{"data":{"type":"event-topic","attributes":{"name":"x","deep":${"[".repeat(depth)}${
    "]".repeat(depth)
  }}}}`;
}

/** A gateway whose topics and webhook endpoints count what reaches them. */
async function countingGateway(env: Record<string, string> = {}) {
  const gw = await testGateway({ env });
  const reached = { topics: 0, webhook: 0 };
  await gw.serve("catalog", [
    route(catalog.eventTopics.create, () => {
      reached.topics++;
      return { status: 201, body: {} };
    }),
  ]);
  await gw.serve("payments", [
    route(payments.webhook, () => {
      reached.webhook++;
      return { status: 200, body: { received: true } };
    }),
  ]);
  return { gw, reached };
}

Deno.test("[gateway] POST /v1/event-topics refuses hostile bodies with 400 before any service", async (t) => {
  const { gw, reached } = await countingGateway();
  await using _ = gw;
  const auth = `JWT ${await token("1")}`;
  const post = (body: BodyInit) =>
    gw.app.request("/v1/event-topics", {
      method: "POST",
      headers: { "Content-Type": JSONAPI, Authorization: auth },
      body,
    });
  const refused = async (body: BodyInit, detail: RegExp) => {
    const response = await post(body);
    assert.equal(response.status, 400);
    const error = await firstError(response);
    assert.match(String(error.detail), detail);
    assert.deepEqual(error.source, { pointer: "" });
  };

  await t.step(`nesting ${MAX_JSON_DEPTH} deep passes, one deeper does not`, async () => {
    // The document itself adds three levels around "deep".
    assert.equal((await post(nested(MAX_JSON_DEPTH - 3))).status, 201);
    await refused(nested(MAX_JSON_DEPTH - 2), /deeper than 64/);
  });
  await t.step("8,000 deep: 400, not 503", async () => {
    await refused(nested(8000), /deeper than 64/);
  });
  await t.step("invalid UTF-8", async () => {
    const bytes = new Uint8Array([...encoder.encode('{"data":{"name":"'), 0xff, 0xfe, 0x22, 0x7d]);
    await refused(bytes, /not valid UTF-8/);
  });
  await t.step("an escaped NUL in a value or a key", async () => {
    await refused('{"data":{"attributes":{"name":"a\\u0000b"}}}', /NUL/);
    await refused('{"data":{"attributes":{"na\\u0000me":"a"}}}', /NUL/);
  });
  await t.step("a raw NUL byte", async () => {
    await refused(new Uint8Array([...encoder.encode('{"a":"'), 0, ...encoder.encode('"}')]), /NUL/);
  });
  await t.step("an escaped backslash before u0000 is no NUL", async () => {
    assert.equal((await post('{"data":{"attributes":{"name":"a\\\\u0000"}}}')).status, 201);
  });
  assert.equal(reached.topics, 2, "only the two acceptable bodies reached the service");
});

Deno.test("[gateway] POST /v1/webhooks/stripe refuses NUL, bad UTF-8 and deep nesting with 400", async (t) => {
  const { gw, reached } = await countingGateway();
  await using _ = gw;
  {
    const send = (body: BodyInit) =>
      gw.app.request("/v1/webhooks/stripe", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00" },
        body,
      });
    for (
      const [name, body] of [
        ["NUL in the event id", '{"id":"evt_\\u0000","type":"account.updated"}'],
        ["invalid UTF-8", new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d])],
        ["8,000 deep", `{"id":"evt_1","data":${"[".repeat(8000)}${"]".repeat(8000)}}`],
      ] as const
    ) {
      await t.step(name, async () => {
        const response = await send(body);
        assert.equal(response.status, 400);
        assert.equal(response.headers.get("Content-Type"), JSONAPI);
      });
    }
    await t.step(
      "a body under the limit that outgrows the bus once escaped: 413, not 503",
      async () => {
        // 560 KB of backslashes: the raw body travels as a JSON string, escaped to twice its size.
        const response = await send(`{"id":"evt_1","pad":"${"\\\\".repeat(280_000)}"}`);
        assert.equal(response.status, 413);
        assert.equal(response.headers.get("Content-Type"), JSONAPI);
      },
    );
    await t.step("a plain event still reaches payments with its raw bytes", async () => {
      const response = await send('{"id":"evt_1","type":"account.updated"}');
      assert.equal(response.status, 200);
    });
    assert.equal(reached.webhook, 1);
  }
});

Deno.test("[gateway] checkJsonBytes scans nesting and NULs without parsing", async (t) => {
  const check = (text: string) => checkJsonBytes(encoder.encode(text), 3);
  await t.step("brackets inside strings do not count", () => {
    assert.equal(check('{"a":"[[[[[[{{{{"}'), null);
  });
  await t.step("an escaped quote does not end the string", () => {
    assert.equal(check('{"a":"\\"[[[[["}'), null);
  });
  await t.step("depth over the limit", () => {
    assert.equal(check('{"a":[[[1]]]}'), "too-deep");
    assert.equal(check('{"a":[[1]],"b":[[2]]}'), null);
  });
  await t.step("NULs", () => {
    assert.equal(check('{"a":"\\u0000"}'), "nul");
    assert.equal(check('{"a":"\\\\u0000"}'), null);
  });
  await t.step("escaped surrogates: a pair is text, one alone is not", () => {
    assert.equal(check('{"a":"\\ud83d\\ude00"}'), null, "a pair (an emoji)");
    assert.equal(check('{"a":"\\uD83D\\uDE00 \\u00e9"}'), null, "upper case, then é");
    assert.equal(check('{"a":"a\\ud800b"}'), "lone-surrogate", "a high one alone");
    assert.equal(check('{"a":"\\ud800\\u0041"}'), "lone-surrogate", "a high one, then A");
    assert.equal(check('{"a":"\\udc00"}'), "lone-surrogate", "a low one alone");
    assert.equal(check('{"a":"\\\\ud800"}'), null, "an escaped backslash, then text");
  });
});

/**
 * Sends `head` (with `Expect: 100-continue`) to `port`, waits for the interim 100 (the handler is
 * reading the body), sends `rest`, and returns the final answer's head and body as text.
 */
async function afterContinue(
  port: number,
  head: string,
  rest: string,
  halfClose = false,
): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encoder.encode(head));
  const received: number[] = [];
  const buffer = new Uint8Array(65_536);
  const text = () => new TextDecoder().decode(new Uint8Array(received));
  const readUntil = async (done: (seen: string) => boolean) => {
    while (!done(text())) {
      const n = await conn.read(buffer);
      if (n === null) break;
      received.push(...buffer.subarray(0, n));
    }
  };
  await readUntil((seen) => seen.includes("\r\n\r\n"));
  assert.match(text(), /^HTTP\/1\.1 100 /, "the handler started reading the body");
  received.length = 0;
  await conn.write(encoder.encode(rest));
  if (halfClose) await conn.closeWrite();
  await readUntil((seen) => /\r\n\r\n[\s\S]*\}$/.test(seen));
  return text();
}

// Found by a hostile-input hunt: Deno.serve hands the handler a body stream that fails once the
// chunked framing breaks (or the client stops sending mid-body); that failure was a 500 and an
// error-level log line, for the client's bytes.
Deno.test("[gateway] a body that breaks off or has broken chunked framing is 400, not 500", async (t) => {
  const { gw, reached } = await countingGateway();
  await using _ = gw;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    gw.app.fetch,
  );
  const auth = `Authorization: JWT ${await token("1")}`;
  const head = (framing: string) =>
    `POST /v1/event-topics HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}\r\nContent-Type: ${JSONAPI}\r\n` +
    `Expect: 100-continue\r\n${framing}\r\n\r\n`;
  const body = '{"data":{"type":"event-topic","attributes":{"name":"x"}}}';
  const refused = (answer: string) => {
    assert.match(answer, /^HTTP\/1\.1 400 /, answer);
    assert.match(answer, new RegExp(`\r\ncontent-type: ${JSONAPI.replace("+", "\\+")}\r\n`, "i"));
    assert.match(answer, /"detail":"Cannot read the body: /);
  };
  await t.step("a chunk size that is no number", async () => {
    refused(await afterContinue(server.addr.port, head("Transfer-Encoding: chunked"), "zz\r\n"));
  });
  await t.step("a chunk not ended by CRLF", async () => {
    const chunk = `${body.length.toString(16)}\r\n${body}0\r\n\r\n`;
    refused(await afterContinue(server.addr.port, head("Transfer-Encoding: chunked"), chunk));
  });
  await t.step("the client stops sending before Content-Length bytes came", async () => {
    const framing = `Content-Length: ${body.length + 10}`;
    refused(await afterContinue(server.addr.port, head(framing), body, true));
  });
  assert.equal(reached.topics, 0);
});
