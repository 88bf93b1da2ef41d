import assert from "node:assert/strict";
import { createLogger } from "@shared/log.ts";
import { startTestSystem } from "@testing/system.ts";
import { startCatalog } from "./service.ts";

// Found by a backup-and-restore review (2026-12-06): a catalog restored from an older backup took
// its ids again from where the backup left its sequences. A token is the user's id and credentials
// version (0 for every new account), so the token of an account made after the backup, which the
// restore lost, signed in as whoever signed up next with that id: it read and changed the new
// account's events, and audit named the new account as the actor. The restore is played here by
// removing what came after the backup and setting the sequences back, which is what it leaves;
// the catalog's next start then moves them past the ids its facts announced.
Deno.test("[catalog] after a restore, a lost account's id and token go to no new account", async () => {
  await using system = await startTestSystem();
  const lost = await system.signUp();
  const lostEvent = await system.createEvent(lost.token);
  await system.catalog.relay.flush();
  await system.sql`delete from events where id = ${lostEvent.id}`;
  await system.sql`delete from users where id = ${lost.id}`;
  // Their ids are the next ones handed out again, as after the backup.
  await system.sql`select setval(pg_get_serial_sequence('users', 'id'), ${lost.id}, false)`;
  await system.sql`select setval(pg_get_serial_sequence('events', 'id'), ${lostEvent.id}, false)`;

  const log = createLogger("catalog", "error");
  const restarted = await startCatalog({ ...system, log });
  system.defer(() => restarted.stop());

  const next = await system.signUp();
  assert.ok(Number(next.id) > Number(lost.id), `the new account took id ${next.id} again`);
  const read = await system.call("GET", `/v1/users/${lost.id}`, { token: lost.token });
  assert.equal(read.status, 401, `the lost account's token read ${JSON.stringify(read.body)}`);
  const event = await system.createEvent(next.token);
  assert.ok(Number(event.id) > Number(lostEvent.id), `the new event took id ${event.id} again`);
});
