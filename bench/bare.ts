/**
 * The floor under the baseline: a bare Hono app whose one handler reads the same page of event
 * topics with postgres.js and sends the rows as plain JSON. No query parsing, no JSON:API, no
 * shared helpers: what any handler of this list must pay at least (HTTP, one statement, one
 * JSON.stringify). The baseline is measured against it to show the work inside the service.
 *
 * Run as its own process: `PORT=8092 DATABASE_URL=... deno run -A bench/bare.ts`.
 */
import { Hono } from "hono";
import postgres from "postgres";
import { SCHEMA } from "../services/catalog/service.ts";

/** The page `GET /v1/event-topics` shows an anonymous caller by default (20 rows, by id). */
export const BARE_PATH = "/bare/event-topics";

if (import.meta.main) {
  const url = Deno.env.get("DATABASE_URL");
  if (!url) {
    console.error("Cannot start the bare handler: DATABASE_URL is not set");
    Deno.exit(1);
  }
  // The catalog's pool size and search path, nothing else.
  const sql = postgres(url, { max: 10, connection: { search_path: SCHEMA } });
  const app = new Hono();
  app.get(BARE_PATH, async (c) =>
    c.json(
      await sql`select id, name, slug, system_image_url, created_at, deleted_at
        from event_topics where deleted_at is null order by id limit 20`,
    ));
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: Number(Deno.env.get("PORT") ?? 8092),
    onListen: () => {},
  }, app.fetch);
  const stop = async () => {
    await server.shutdown();
    await sql.end({ timeout: 5 });
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => void stop());
  Deno.addSignalListener("SIGINT", () => void stop());
}
