/**
 * A handler's database errors as API errors: a bad value in a read (`22P02`), a statement cut by
 * the deadline (`57014`). Writes translate theirs in the store, with the conflict message of their
 * table. `withIdempotency` translates whatever still escapes a bound handler (and watches
 * outages), so this wrapper is only for code that must see the API error itself, as the catalog's
 * `handle` did before the kit.
 *
 * @example
 * ```ts ignore
 * bus.serve(info, bindOperations(contract, { "things.get": translatingDbErrors(getThing) }));
 * ```
 */
import type { Handler } from "../bus_endpoints.ts";
import { translateDbError } from "../db.ts";

/** `handler`, with every error it throws passed through `translateDbError`. */
export function translatingDbErrors<Req, Res>(handler: Handler<Req, Res>): Handler<Req, Res> {
  return async (payload, msg) => {
    try {
      return await handler(payload, msg);
    } catch (error) {
      throw translateDbError(error);
    }
  };
}
