/**
 * The floor under any gateway built as ours is (Hono on `Deno.serve`): a Hono app whose one
 * handler answers every GET with bytes it already holds. No token, no bus, no relay: what one
 * HTTP request costs a process before a gateway does anything of its own. The cache benchmark's
 * signed-in part measures its CPU per request beside the gateway's, to show how much of the
 * gateway's share of a never-cached read any work on the gateway could still save (issue 11).
 *
 * The bytes come from the benchmark: `PUT /floor` with the document and its `Content-Type`.
 *
 * Run as its own process: `PORT=8093 DATABASE_URL=... deno run -A bench/hono_floor.ts`
 * (DATABASE_URL is required of every side, and not used here).
 */
import { Hono } from "hono";
import { serveSide } from "./serve_side.ts";

export const FLOOR_PATH = "/floor";

/** The app: `PUT /floor` keeps a document, every GET answers it. */
export function createFloorApp(): Hono {
  let body = new Uint8Array(0);
  let contentType = "application/octet-stream";
  const app = new Hono();
  app.put(FLOOR_PATH, async (c) => {
    body = new Uint8Array(await c.req.arrayBuffer());
    contentType = c.req.header("Content-Type") ?? contentType;
    return c.body(null, 204);
  });
  app.get("*", () => new Response(body, { headers: { "Content-Type": contentType } }));
  return app;
}

if (import.meta.main) {
  await serveSide("Hono floor", 8093, () => {
    const app = createFloorApp();
    return Promise.resolve({ fetch: app.fetch, close: () => Promise.resolve() });
  });
}
