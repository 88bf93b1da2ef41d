/**
 * The handler kit: what every service's handlers use the same way. Import from here.
 *
 * - Replies (reply.ts): `renderOne(def, row, { req, status?, included?, fields?, include? })`,
 *   `renderList(def, { rows, count }, { req, query, included? })`,
 *   `renderLinkage(relatedDef, related, { req, parent, includes? })` (`includes`: what `include`
 *   asks for on the parent, as the original's relationship routes answered), `renderEmpty(req)`,
 *   `deletedReply`
 *   (`deletedReplyOf(type, record)` where the resource has other addresses than its id).
 *   What `include` asks of other services (foreign includes and relations) is derived from the
 *   contracts; no service lists it.
 * - Checks (guards.ts): `requireActor(actor)`, `requireLogin(caller)`, `requireAdmin(caller, what?)`,
 *   `isAdmin(caller)`, `withTrashed(caller, query)` (`trashedAsked(query)`: before the caller is
 *   known), `permanentDelete(caller, query)`,
 *   `notFound(what, id)`. Any caller with `isAdmin`/`isSuperAdmin` works.
 * - Ids: `isId(value)` / `ID_PATTERN` (a bigint row id; anything else is a 404, never a cast).
 * - Database errors: stores translate their writes' conflicts with their own message
 *   (`translateDbError(error, { conflict })`); `withIdempotency` translates whatever else escapes a
 *   bound handler; `translatingDbErrors(handler)` where a handler needs the API error sooner.
 *
 * Conventions the kit assumes (one way in every service):
 * - Handlers are bound by contract key: `bindOperations(contract, { "things.get": getThing, ... })`
 *   inside `withIdempotency(sql, ...)`, one small named function per operation, grouped in
 *   `handlers/<collection>.ts` (what collections truly share goes to a helper file beside them).
 * - Rows are typed per store: `type ThingRow = { id: string; ... }` beside the queries
 *   (`sql<ThingRow[]>`...). Bigint ids and numerics arrive as strings (postgres.js), timestamps
 *   as `Date`. A `type` rather than an `interface`, so a row still fits where a loose
 *   `Record<string, unknown>` is taken (fact payloads, `unchanged`).
 * - A service that follows other services' facts does it in `follow_<source>.ts`, exporting
 *   `follow<Source>Facts(...)`, which starts the durable consumer, and `apply<Source>Facts(...)`,
 *   which handles one batch (tests call it directly). `<source>` names whose facts are followed:
 *   catalog `follow_payments.ts`, discounts and payments `follow_catalog.ts`, audit
 *   `follow_all.ts`. Durable consumer names never change (a new name would replay history).
 *
 * @example
 * ```ts
 * import { notFound, renderOne, requireAdmin } from "@shared/handlers/mod.ts";
 * const def = { type: "thing", collection: "things", attributes: { name: "name" } };
 * const req = { actor: { id: "1" }, params: { id: "3" }, path: "/v1/things/3", query: {}, requestId: "r" };
 * const caller = { id: "1", email: "a@b.c", isAdmin: true, isSuperAdmin: false };
 * requireAdmin(caller);
 * const row = [{ id: "3", name: "Lamp" }].find((r) => r.id === req.params.id) ?? notFound("thing", req.params.id);
 * renderOne(def, row, { req }).status; // 200
 * ```
 */
export {
  foreignIncludesOf,
  foreignRelationsOf,
  type IncludeQuery,
  type LinkageIncludes,
  linkageOf,
  renderLinkage,
  renderList,
  type RenderListOptions,
  renderOne,
  type RenderOneOptions,
} from "./reply.ts";
export {
  type AdminFlags,
  isAdmin,
  notFound,
  permanentDelete,
  requireActor,
  requireAdmin,
  requireLogin,
  trashedAsked,
  withTrashed,
} from "./guards.ts";
export { translatingDbErrors } from "./translate.ts";
export { checkForeignFieldsets } from "./foreign_fields.ts";
export { deletedReply, deletedReplyOf, renderEmpty } from "../jsonapi.ts";
export { ID_PATTERN, isId } from "../schemas/ids.ts";
