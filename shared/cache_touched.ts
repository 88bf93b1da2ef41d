/**
 * Announcements on `<prefix>.gateway.cache.touched` (shared/subjects.ts): cache tags whose
 * replies may have gone stale, over core NATS, outside the fact stream. Every gateway drops its
 * entries with those tags, the services' access projections theirs. Two kinds of sender:
 * - a gateway that relayed a write, before it replies (its peers drop the write's pages one hop
 *   later, before the write's fact arrives);
 * - a service whose reads follow another service's facts (the discounts' projection of events
 *   behind the checkout lookup) once it has applied them: a gateway that heard the fact first
 *   may have fetched the page again in between, and stored it as it was.
 *
 * At most once, like everything on core NATS: the receivers' `CACHE_SETTLE_MS` rule (a page
 * fetched just after a change lives only that long) remains the bound when one is lost.
 *
 * @example
 * ```ts ignore
 * announceTouched(bus, ["event:5", "event:my-conf"]);
 * ```
 */
import { headers, type MsgHdrs } from "@nats-io/nats-core";
import type { Bus } from "./bus.ts";
import { gatewayTouched } from "./subjects.ts";

/**
 * The header naming the cache that already dropped what an announcement lists: that gateway
 * skips its own announcement when it comes back. Announcements without it are honoured by all.
 */
export const ORIGIN_HEADER = "Cache-Origin";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Tells every cache that replies showing `tags` may be stale; `origin` has dropped them already. */
export function announceTouched(
  bus: Bus,
  tags: readonly string[],
  options: { origin?: string } = {},
): void {
  if (!tags.length || bus.nc.isClosed()) return;
  let sent: { headers: MsgHdrs } | undefined;
  if (options.origin !== undefined) {
    sent = { headers: headers() };
    sent.headers.set(ORIGIN_HEADER, options.origin);
  }
  bus.nc.publish(bus.subject(gatewayTouched), encoder.encode(tags.join(" ")), sent);
}

/** The tags an announcement's payload lists. */
export function touchedTags(data: Uint8Array): string[] {
  return decoder.decode(data).split(" ");
}
