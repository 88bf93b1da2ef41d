/**
 * The README's recipe after rows were changed behind the services' backs (a backup restored, an
 * edit by SQL): the `nats pub` it documents, sent as written (with the test's prefix), empties
 * the gateway's cache, so a page it held is fetched again.
 */
import assert from "node:assert/strict";
import { Bus } from "@shared/bus.ts";
import { gatewayTouched } from "@shared/subjects.ts";
import { eventually } from "@testing/eventually.ts";
import { startTestSystem } from "@testing/system.ts";

const SETTLE_MS = 100;

/** The README's command: its subject and its payload, shell quotes taken off. */
async function readmeCommand(): Promise<{ subject: string; payload: string }> {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const found = readme.match(/^\s*nats pub (oe\.gateway\.cache\.touched) '([^']*)'\s*$/m);
  assert.ok(found, "the README documents `nats pub oe.gateway.cache.touched '...'`");
  return { subject: found[1], payload: found[2] };
}

Deno.test("[gateway] the README's announcement after an edit by SQL empties the cache", async () => {
  const command = await readmeCommand();
  await using system = await startTestSystem({ env: { CACHE_SETTLE_MS: String(SETTLE_MS) } });
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, { attributes: { state: "published" } });
  await system.readFacts();
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS + 50));
  const path = `/v1/events/${event.id}`;
  const name = async () => {
    const reply = await system.call("GET", path);
    assert.equal(reply.status, 200);
    return {
      cache: reply.headers.get("X-Cache"),
      name: (reply.body as { data: { attributes: { name: string } } }).data.attributes.name,
    };
  };
  const cachedName = (await name()).name;
  assert.equal((await name()).cache, "HIT");

  await system.sql`update events set name = 'Edited by SQL' where id = ${event.id}`;
  assert.deepEqual(await name(), { cache: "HIT", name: cachedName }, "no fact: still cached");

  // The operator's own connection, the subject with this system's prefix instead of `oe`.
  const subject = command.subject.replace(/^oe\./, `${system.prefix}.`);
  assert.equal(subject, system.bus.subject(gatewayTouched));
  const operator = await Bus.connect({
    url: Deno.env.get("NATS_URL") || "nats://127.0.0.1:4222",
    prefix: system.prefix,
    name: "operator",
  });
  try {
    operator.nc.publish(subject, command.payload);
    await operator.nc.flush();
  } finally {
    await operator.close();
  }
  await eventually(async () => (await name()).name === "Edited by SQL", 5_000, "the edit shown");
});
