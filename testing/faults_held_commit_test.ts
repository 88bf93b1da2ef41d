/**
 * A write whose COMMIT is held on its way to Postgres (a stalled link, a paused proxy or VM) just
 * after a lock wait ran it close to its deadline: the gateway answers 504, and the change must
 * not be applied when the COMMIT finally arrives (README, "Faults and recovery", "Deadlines").
 * Until 2026-12-05 Postgres waited for that COMMIT as long as the time left when the transaction
 * began, and applied it after the 504.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { freePort } from "@shared/net.ts";
import { testDatabase } from "@shared/testing.ts";
import { factBus } from "./fact_bus.ts";
import { adminToken, faultEnv, spawnFaultSystem } from "./fault_env.ts";
import { laggingProxy } from "./lagging_proxy.ts";
import { holdTableLock, untilWaitingForLocks } from "./table_lock.ts";

const JSONAPI = "application/vnd.api+json";
const REQUEST_TIMEOUT_MS = 2000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A proxy's `sendLag` that holds the chunks carrying a COMMIT for `ms()`: postgres.js prepares
 * its `commit` once per connection (a Parse with the text), then sends only a Bind naming it.
 */
function commitsHeld(ms: () => number): (chunk: Uint8Array) => number {
  const text = new TextDecoder("latin1");
  const names = new Set<string>();
  return (chunk) => {
    const sent = text.decode(chunk);
    for (const [, name] of sent.matchAll(/P[\s\S]{4}([^\0]+)\0commit\0/g)) names.add(name);
    const commit = /\0commit\0/.test(sent) ||
      [...names].some((name) => sent.includes(`\0${name}\0`));
    return commit ? ms() : 0;
  };
}

Deno.test({
  name: "[faults] a PATCH whose COMMIT is held past its 504 is not applied",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using stack = new AsyncDisposableStack();
    const database = stack.use(await testDatabase());
    const proxy = stack.use(laggingProxy(Number(new URL(database.url).port || 5432), 0));
    let holdCommitsMs = 0;
    proxy.sendLag = commitsHeld(() => holdCommitsMs);
    const proxied = new URL(database.url);
    proxied.port = String(proxy.port);
    const testbus = stack.use(await factBus());
    const port = freePort();
    const env = faultEnv({
      databaseUrl: proxied.href,
      natsUrl: testbus.natsUrl,
      prefix: testbus.prefix,
      port,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    await spawnFaultSystem(stack, env, [["catalog", "catalog"]]);
    const url = `http://127.0.0.1:${port}`;
    const headers = { "Content-Type": JSONAPI, Authorization: `JWT ${await adminToken(url, env)}` };
    const created = await fetch(`${url}/v1/event-topics`, {
      method: "POST",
      headers,
      body: JSON.stringify({ data: { type: "event-topic", attributes: { name: "before" } } }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const id = (await created.json()).data.id;

    // The lock is taken beside the proxy: only the service's statements cross it.
    const observer = postgres(database.url, { max: 1, onnotice: () => {} });
    stack.defer(() => observer.end());
    await using lock = await holdTableLock(database.url, "catalog.event_topics");
    const sentAt = Date.now();
    const patch = fetch(`${url}/v1/event-topics/${id}`, {
      method: "PATCH",
      headers,
      body: JSON.stringify({ data: { type: "event-topic", id, attributes: { name: "after" } } }),
    });
    await untilWaitingForLocks(observer, { count: 1, what: "the PATCH" });
    await sleep(sentAt + REQUEST_TIMEOUT_MS - 500 - Date.now());
    // About 500 ms left as the lock goes: what is sent from now on arrives 500 ms past the 504.
    holdCommitsMs = 1000;
    await lock.release();
    const answer = await patch;
    await answer.body?.cancel();
    const answeredIn = Date.now() - sentAt;
    await sleep(1500);
    holdCommitsMs = 0;

    const read = await fetch(`${url}/v1/event-topics/${id}`, { headers });
    const name = (await read.json()).data.attributes.name;
    // 504 at the deadline, or 503 a moment before it from a service whose session Postgres ended.
    assert.ok([503, 504].includes(answer.status), `answered ${answer.status} in ${answeredIn} ms`);
    assert.equal(name, "before", `answered ${answer.status} in ${answeredIn} ms, applied later`);
  },
});
