/**
 * The floor under the baseline: a bare Hono app whose one handler reads the same page of event
 * topics with postgres.js and sends the rows as plain JSON. No query parsing, no JSON:API, no
 * shared helpers: what any handler of this list must pay at least (HTTP, one statement, one
 * JSON.stringify). The baseline is measured against it to show the work inside the service.
 *
 * Run as its own process: `PORT=8092 DATABASE_URL=... deno run -A bench/bare.ts`.
 */
import { serveSide } from "./serve_side.ts";
import { Hono } from "hono";
import postgres from "postgres";
import { SCHEMA } from "../services/catalog/service.ts";

/** The page `GET /v1/event-topics` shows an anonymous caller by default (20 rows, by id). */
export const BARE_PATH = "/bare/event-topics";

if (import.meta.main) {
  await serveSide("bare handler", 8092, (url) => {
    // The catalog's pool size and search path, nothing else.
    const sql = postgres(url, { max: 10, connection: { search_path: SCHEMA } });
    const app = new Hono();
    app.get(BARE_PATH, async (c) =>
      c.json(
        await sql`select id, name, slug, system_image_url, created_at, deleted_at
          from event_topics where deleted_at is null order by id limit 20`,
      ));
    return Promise.resolve({ fetch: app.fetch, close: () => sql.end({ timeout: 5 }) });
  });
}
