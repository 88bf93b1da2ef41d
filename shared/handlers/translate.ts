/**
 * The one place a handler's database errors become API errors: a bad value in a read (`22P02`),
 * a statement cut by the deadline (`57014`), an outage. Writes translate theirs in the store, with
 * the conflict message of their table; whatever escapes reaches this wrapper.
 *
 * @example
 * ```ts ignore
 * bus.serve(info, bindOperations(contract, { "things.get": translatingDbErrors(getThing) }));
 * ```
 */
import type { Handler } from "../bus.ts";
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
