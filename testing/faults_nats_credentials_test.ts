/**
 * NATS refusing the system's credentials for a while (a password rotated on the server before the
 * processes, then rolled back): the processes keep asking, the gateway answers 503 meanwhile
 * (within the 1 s a lost connection is waited for), and everything serves again by itself once the
 * server takes the credentials. Until 2026-12-06 nats.js gave each connection up at the second
 * refusal: the catalog and the gateway lived on without NATS, every route answered 503 until
 * someone restarted them (measured on a private server; shared/bus_credentials_test.ts has the
 * pace). The catalog and the gateway run as subprocesses on a private nats-server with a login.
 */
import assert from "node:assert/strict";
import { freePort } from "@shared/net.ts";
import { testDatabase } from "@shared/testing.ts";
import { eventually } from "./eventually.ts";
import { adminToken, faultEnv, spawnFaultSystem } from "./fault_env.ts";
import { startNatsServer } from "./nats_server.ts";

const JSONAPI = "application/vnd.api+json";
const RIGHT = { user: "oe", password: "right-pw-4321" };
const ROTATED = { user: "oe", password: "rotated-pw-8765" };

Deno.test("[faults] NATS refusing the credentials for a while: 503s at once, then it heals by itself", async () => {
  await using stack = new AsyncDisposableStack();
  const nats = stack.use(await startNatsServer({ jetStream: true, login: RIGHT }));
  const database = stack.use(await testDatabase());
  const port = freePort();
  const env = faultEnv({
    databaseUrl: database.url,
    natsUrl: `nats://${RIGHT.user}:${RIGHT.password}@127.0.0.1:${nats.port}`,
    prefix: `creds${crypto.randomUUID().slice(0, 8)}`,
    port,
    requestTimeoutMs: 2000,
  });
  const { catalog, gateway } = await spawnFaultSystem(stack, env, [["catalog", "catalog"]]);
  const url = `http://127.0.0.1:${port}`;
  const token = await adminToken(url, env);
  const signedIn = { Accept: JSONAPI, Authorization: `JWT ${token}` };
  const createTopic = async (name: string) => {
    const response = await fetch(`${url}/v1/event-topics`, {
      method: "POST",
      headers: { ...signedIn, "Content-Type": JSONAPI },
      body: JSON.stringify({ data: { type: "event-topic", attributes: { name } } }),
    });
    const body = await response.json();
    return { status: response.status, id: body.data?.id as string | undefined, body };
  };
  const read = async (id: string) => {
    const response = await fetch(`${url}/v1/event-topics/${id}`, { headers: signedIn });
    await response.body?.cancel();
    return response.status;
  };
  const before = await createTopic("Before the rotation");
  assert.equal(before.status, 201, JSON.stringify(before.body));

  await nats.stop();
  await nats.start({ login: ROTATED });
  for (const process of [catalog, gateway]) {
    await process.waitForLine("NATS refuses this process's credentials", 10_000);
  }
  // Refused for 4 s: each read a 503 within the reconnect grace, not a hang to the deadline.
  for (const until = Date.now() + 4_000; Date.now() < until;) {
    const sent = performance.now();
    assert.equal(await read(before.id!), 503);
    assert.ok(performance.now() - sent < 1_500, "a 503 within the reconnect grace");
    await new Promise((resolve) => setTimeout(resolve, 250));
  }

  await nats.stop();
  await nats.start({ login: RIGHT });
  await eventually(async () => await read(before.id!) === 200, 10_000, "reads served again");
  const after = await createTopic("After the rotation");
  assert.equal(after.status, 201, JSON.stringify(after.body));
  const health = await (await fetch(`${url}/health`)).json();
  assert.ok(health.services?.catalog?.instances >= 1, `health: ${JSON.stringify(health)}`);
  for (const process of [catalog, gateway]) {
    const lines = process.lines.join("\n");
    assert.ok(!lines.includes(RIGHT.password) && !lines.includes(ROTATED.password), process.name);
  }
});
