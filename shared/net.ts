/**
 * Ports on this machine.
 *
 * @example
 * ```ts
 * import { freePort } from "@shared/net.ts";
 * const port = freePort();
 * Deno.serve({ hostname: "127.0.0.1", port }, () => new Response("ok"));
 * ```
 */

/**
 * A TCP port on 127.0.0.1 that nothing listens on right now: the OS picks it and we release it
 * for the caller's server (which should bind it at once; another process could take it first).
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Deno.listen's failure for a host name that does not resolve (a bare `Error`, no class). */
export function isLookupFailure(error: unknown): boolean {
  return error instanceof Error && /failed to lookup address information/i.test(error.message);
}
