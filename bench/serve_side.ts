/**
 * How each single-process side of the benchmark (baseline, bare handler, cache and discounts
 * baselines) runs as a process of its own: the database from DATABASE_URL, the port from PORT,
 * and a clean stop on SIGTERM/SIGINT (bench/setup.ts sends them).
 */
export interface Side {
  fetch: (request: Request) => Response | Promise<Response>;
  /** Closes what the side opened (its pools). */
  close(): Promise<void>;
}

export async function serveSide(
  what: string,
  defaultPort: number,
  open: (databaseUrl: string) => Promise<Side>,
): Promise<void> {
  const url = Deno.env.get("DATABASE_URL");
  if (!url) {
    console.error(`Cannot start the ${what}: DATABASE_URL is not set`);
    Deno.exit(1);
  }
  const side = await open(url);
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: Number(Deno.env.get("PORT") ?? defaultPort),
    onListen: () => {},
  }, side.fetch);
  const stop = async () => {
    await server.shutdown();
    await side.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => void stop());
  Deno.addSignalListener("SIGINT", () => void stop());
}
