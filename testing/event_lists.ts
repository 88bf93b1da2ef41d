/**
 * `GET /v1/events` filtered as open-event-frontend's pages filter it (a JSON `filter`, every
 * match on one page), read as the matching events' ids in ascending order: what the tests of
 * relationship filters, explore's dates and its call-for-speakers filter compare.
 *
 * @example
 * ```ts ignore
 * const ids = await filteredEventIds(system, [{ name: "state", op: "eq", val: "published" }]);
 * ```
 */
import { expectStatus, type TestSystem } from "./system.ts";

/** A filter tree as the `filter` query parameter's value. */
export const filterParam = (conditions: unknown) => encodeURIComponent(JSON.stringify(conditions));

/** The ids of a list's resources, in ascending numeric order. */
export const sortedIds = (data: { id: string }[]) => data.map((r) => r.id).sort((a, b) => +a - +b);

/**
 * The ids of the events `conditions` keep, as `token` sees them (anonymous without one);
 * `extra` goes on the query as it is (`&get_trashed=true`). Anything but a 200 fails.
 */
export async function filteredEventIds(
  system: TestSystem,
  conditions: unknown,
  token?: string,
  extra = "",
): Promise<string[]> {
  const reply = await system.call(
    "GET",
    `/v1/events?filter=${filterParam(conditions)}&page[size]=0${extra}`,
    { token },
  );
  expectStatus(reply, 200, JSON.stringify(conditions));
  return sortedIds(reply.body.data);
}
