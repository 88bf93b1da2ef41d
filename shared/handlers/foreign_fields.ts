/**
 * Other services' fieldsets, checked before a write. A write's answer gets the resources another
 * service owns from the gateway, which asks their owner (`<owner>.resolve`) only once the write
 * has committed: a bad `fields[event]` found then was a 400 for a write that had happened (a
 * discount code inserted, a Stripe code spent). So a write whose `include` reaches such a type
 * with a fieldset has the owner check it first, with no ids: the owner reads fieldsets as its own
 * routes do (a 400 naming `fields[<type>]`), and nothing is asked when no fieldset names one.
 *
 * @example
 * ```ts ignore
 * const query = parseSingleQuery(req.query, codeQuery);
 * await checkForeignFieldsets(ctx.bus, codeDef, query, req.actor);
 * ```
 */
import type { Bus } from "../bus.ts";
import { typeOwners } from "../contracts/mod.ts";
import type { ResourceDef } from "../jsonapi.ts";
import type { Actor } from "../schemas/http.ts";
import { resolveEndpoint } from "../subjects.ts";
import type { IncludeQuery } from "./reply.ts";

/** The types of other services that `query.include` reaches from `def` and `query.fields` names. */
function foreignFieldsets(
  def: Pick<ResourceDef, "type" | "relationships">,
  query: IncludeQuery,
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const path of query.include) {
    const type = def.relationships?.[path]?.type;
    if (type === undefined || typeOwners[type] === typeOwners[def.type]) continue;
    const names = query.fields[type];
    if (names !== undefined) out[type] = names;
  }
  return out;
}

/** Asks the owner of each type `foreignFieldsets` finds to check its fieldset (throws its 400). */
export async function checkForeignFieldsets(
  bus: Bus,
  def: Pick<ResourceDef, "type" | "relationships">,
  query: IncludeQuery,
  actor: Actor | null,
): Promise<void> {
  const checks = Object.entries(foreignFieldsets(def, query)).map(([type, names]) =>
    bus.request(resolveEndpoint(typeOwners[type]), {
      actor,
      type,
      ids: [],
      fields: { [type]: names },
    })
  );
  await Promise.all(checks);
}
