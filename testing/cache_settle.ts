/**
 * Waiting out the gateway cache's settle rule (gateway/cache.ts): a reply fetched within
 * CACHE_SETTLE_MS of a change to what it shows lives only until that window ends. A test that
 * reads a page twice and asserts the second read is a hit must read after the window of the
 * writes before it; otherwise a slow step lets the entry lapse between the miss and the hit.
 * Tests start their system with `shortSettle` and call `settledCache` after their writes.
 *
 * @example
 * ```ts ignore
 * await using system = await startTestSystem({ env: shortSettle });
 * await system.createTopic("Astronomy");
 * await settledCache(system);
 * ```
 */
import type { TestSystem } from "./system.ts";

/** The settle window these tests run with, short so that waiting it out costs little. */
export const SHORT_SETTLE_MS = 100;

/** Environment for `startTestSystem` with the short settle window. */
export const shortSettle = { CACHE_SETTLE_MS: String(SHORT_SETTLE_MS) };

/** Waits until the facts so far have reached the gateway and their settle window is over. */
export async function settledCache(system: TestSystem): Promise<void> {
  await system.readFacts();
  await new Promise((resolve) => setTimeout(resolve, SHORT_SETTLE_MS + 50));
}
