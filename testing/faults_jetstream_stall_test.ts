/**
 * JetStream whose store stalls (its disk full) holds back facts, not requests. nats-server handles
 * a client's JetStream publish, ack or API request within that client's read loop, so while one
 * hung on the full disk everything else on the same connection waited too: every service lost
 * NATS every 3 s, `/health` named them missing and requests answered 504 for as long as the disk
 * stayed full (a resource review, 2026-12-06). Every process now sends its JetStream traffic on a
 * connection of its own (`Bus.jetStreamConnection`): reads and writes go on, the writes' facts
 * wait in the outbox, and once the server is started again with room they are published, each
 * once and in order. The catalog and the gateway run as subprocesses on a private nats-server
 * whose store is a small disk of the test's own (mounting it needs root: ignored otherwise).
 */
import assert from "node:assert/strict";
import { Bus } from "@shared/bus.ts";
import type { Fact } from "@shared/facts.ts";
import { freePort } from "@shared/net.ts";
import { facts } from "@shared/subjects.ts";
import { testDatabase } from "@shared/testing.ts";
import { eventually } from "./eventually.ts";
import { storedMessages } from "./facts.ts";
import { adminToken, faultEnv, spawnFaultSystem } from "./fault_env.ts";
import { startNatsServer } from "./nats_server.ts";
import { canMountSmallDisk, mountSmallDisk } from "./small_disk.ts";

const JSONAPI = "application/vnd.api+json";
const MiB = 1024 * 1024;
/** How long the test keeps reading and writing while the store is full. */
const STALL_MS = 8_000;

Deno.test({
  name: "[faults] a JetStream store that stalls holds facts back, not reads and writes",
  ignore: !canMountSmallDisk,
}, async () => {
  await using stack = new AsyncDisposableStack();
  const disk = stack.use(await mountSmallDisk(8 * MiB));
  const nats = stack.use(
    await startNatsServer({ jetStream: true, store: { dir: disk.path, maxFileStore: 1024 * MiB } }),
  );
  const database = stack.use(await testDatabase());
  const prefix = `stall${crypto.randomUUID().slice(0, 8)}`;
  const port = freePort();
  const env = faultEnv({
    databaseUrl: database.url,
    natsUrl: nats.url,
    prefix,
    port,
    requestTimeoutMs: 2000,
  });
  const { catalog, gateway } = await spawnFaultSystem(stack, env, [["catalog", "catalog"]]);
  const api = apiOf(`http://127.0.0.1:${port}`, await adminToken(`http://127.0.0.1:${port}`, env));
  const topicIds = [await api.createTopic("Read while stalled")];

  await disk.fill(32 * 1024);
  // Writes until one's fact finds the disk full: the relay cannot publish it.
  const stalled = () => catalog.lines.some((line) => line.includes("cannot publish facts yet"));
  const failed: string[] = [];
  for (let i = 0; i < 300 && !stalled() && !failed.length; i++) {
    await api.createTopic(`Filler ${i}`).then(
      (id) => topicIds.push(id),
      (e) => failed.push(`${e}`),
    );
  }
  assert.deepEqual(failed, [], "writes while the disk filled");
  await catalog.waitForLine("cannot publish facts yet", 15_000);

  const seen = await readAndWriteFor(api, topicIds[0], STALL_MS);
  topicIds.push(...seen.created);
  const bad = seen.statuses.filter(([, status]) => status !== 200 && status !== 201);
  assert.deepEqual(bad, [], `answers while the store was full: ${JSON.stringify(bad)}`);
  assert.ok(seen.statuses.length >= 40, `${seen.statuses.length} requests in ${STALL_MS} ms`);
  const health = await (await fetch(`${api.url}/health`)).json();
  assert.ok(health.services?.catalog?.instances >= 1, `health: ${JSON.stringify(health)}`);
  // The stall was real, and it held only the JetStream connections.
  assert.ok(catalog.lines.some((l) => l.includes("lost NATS (JetStream connection)")));
  for (const process of [catalog, gateway]) {
    assert.ok(!process.lines.some((l) => l.includes(`"lost NATS; reconnecting"`)), process.name);
  }
  // The gateway cannot tell what facts it missed meanwhile: its cache is off.
  assert.ok(
    gateway.lines.some((l) => l.includes("cache suspended: the fact stream cannot be read")),
  );

  // Started again with room (a server hung on a full disk does not heal by itself, 2.9.10).
  await nats.stop();
  await disk.unfill();
  await nats.start();
  const bus = await Bus.connect({ url: nats.url, prefix });
  stack.defer(() => bus.close());
  const created = async () =>
    (await storedMessages(bus, facts.stream(prefix)))
      .map((message) => message.json<Fact>())
      .filter((fact) => fact.type === "catalog.event-topic.created")
      .map((fact) => String((fact.data as { id: string }).id));
  await eventually(
    async () => (await created()).length >= topicIds.length,
    20_000,
    "every write's fact to be published",
  );
  assert.deepEqual(await created(), topicIds, "each fact once, in the order of the writes");
});

interface Api {
  url: string;
  createTopic(name: string): Promise<string>;
  /** A read of topic `id`'s page, signed in or not; its status. */
  readTopic(id: string, signedIn: boolean): Promise<number>;
}

function apiOf(url: string, token: string): Api {
  const signedIn = { Accept: JSONAPI, Authorization: `JWT ${token}` };
  return {
    url,
    createTopic: async (name) => {
      const response = await fetch(`${url}/v1/event-topics`, {
        method: "POST",
        headers: { ...signedIn, "Content-Type": JSONAPI },
        body: JSON.stringify({ data: { type: "event-topic", attributes: { name } } }),
      });
      const body = await response.json();
      assert.equal(response.status, 201, JSON.stringify(body));
      return String(body.data.id);
    },
    readTopic: async (id, asUser) => {
      const response = await fetch(`${url}/v1/event-topics/${id}`, {
        headers: asUser ? signedIn : { Accept: JSONAPI },
      });
      await response.body?.cancel();
      return response.status;
    },
  };
}

/**
 * For `ms`: a signed-in and an anonymous read of topic `id` every 100 ms, a new topic every
 * 500 ms. Every answer's status (a failed write's too: `createTopic` throws on anything but 201,
 * recorded as 0), and the ids of the topics made.
 */
async function readAndWriteFor(api: Api, id: string, ms: number) {
  const statuses: [what: string, status: number][] = [];
  const created: string[] = [];
  const until = Date.now() + ms;
  for (let round = 0; Date.now() < until; round++) {
    statuses.push(["signed-in read", await api.readTopic(id, true)]);
    statuses.push(["anonymous read", await api.readTopic(id, false)]);
    if (round % 5 === 0) {
      try {
        created.push(await api.createTopic(`Stalled ${round}`));
        statuses.push(["write", 201]);
      } catch (error) {
        statuses.push([`write: ${error}`, 0]);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { statuses, created };
}
