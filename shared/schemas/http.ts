/**
 * What the gateway sends a service for one HTTP request, and what comes back. The gateway
 * authenticates and parses; the service decides everything else.
 *
 * @example
 * ```ts
 * import { httpRequestSchema } from "@shared/schemas/http.ts";
 * httpRequestSchema.parse({ actor: null, params: { id: "1" }, path: "/v1/events/1", query: {}, requestId: "r1" });
 * ```
 */
import { z } from "zod";

/**
 * The authenticated caller: only the id travels (services look up roles fresh), with the version
 * of the user's credentials the token was issued under (its `ver` claim). The catalog accepts a
 * caller only at the user's current version, so a token from before a password change is
 * refused everywhere; without one it is read as 0, the version tokens issued before versions
 * existed carry (refused once the user's password changed).
 */
export const actorSchema = z.object({
  id: z.string().min(1),
  tokenVersion: z.int().min(0).optional(),
});
export type Actor = z.infer<typeof actorSchema>;

/**
 * What a conditional write carries from the read its preconditions held on (the gateway's;
 * shared/read_snapshot.ts): that read's database snapshot, `pg_current_snapshot()` as text
 * (`xmin:xmax:xip,...`), and the header a 412 names (the one the client sent; `If-Match` when
 * both).
 */
export const unchangedSinceSchema = z.object({
  snapshot: z.string().max(8192).regex(/^\d{1,20}:\d{1,20}:(\d{1,20}(,\d{1,20})*)?$/),
  header: z.enum(["If-Match", "If-None-Match"]),
});
export type UnchangedSince = z.infer<typeof unchangedSinceSchema>;

export const httpRequestSchema = z.object({
  actor: actorSchema.nullable(),
  /** Path parameters, plus fixed ones a route adds (for example `rel`). */
  params: z.record(z.string(), z.string()),
  /** The request path as the client sent it (for `links`), e.g. `/v1/event-topics`. */
  path: z.string(),
  /** Raw query parameters, one value each (the first one counts, as in the original). */
  query: z.record(z.string(), z.string()),
  /** The parsed JSON body of POST/PATCH requests. */
  body: z.unknown().optional(),
  /** The body as received, for routes that verify a signature over it (webhooks). */
  rawBody: z.string().optional(),
  /** Request headers a route asks for by name (lower case), e.g. `stripe-signature`. */
  headers: z.record(z.string(), z.string()).optional(),
  requestId: z.string(),
  /** The HTTP method (the gateway sends it): a done write is answered as done whatever happens. */
  method: z.string().optional(),
  /** A read the gateway makes to check a write's preconditions: answer with its `snapshot`. */
  snapshotAsked: z.boolean().optional(),
  /** A conditional write: refused (412) if what it changes changed since that snapshot. */
  unchangedSince: unchangedSinceSchema.optional(),
});
export type HttpRequest = z.infer<typeof httpRequestSchema>;

/**
 * A relationship of the primary data that another service owns, which `include` asked for
 * (e.g. an event's `discount-codes`): the gateway asks that service for the related resources
 * of these parents and adds them, with the linkage, to the document.
 */
export interface ForeignRelation {
  parentType: string;
  relationship: string;
  parentIds: string[];
}

/** A service's answer to an HTTP-mapped request: the full response document and its status. */
export interface HttpReply {
  status: number;
  body: unknown;
  /**
   * What a DELETE removed, as its public attributes (never sent to the client): the reply's body
   * names nothing, and the gateways' caches must drop every address of it, not only the one in
   * the path (an event's id when it was deleted by its identifier).
   */
  deleted?: { type: string; record: { id: string } & Record<string, unknown> };
  /**
   * What else a write deleted or changed (a topic's sub-topics, the events unlinked from it), the
   * same way (never sent to the client): their facts go out too, but the gateway that relayed the
   * write drops their pages with its reply, so that its client reads its own write.
   */
  cascaded?: { type: string; record: { id: string } & Record<string, unknown> }[];
  /**
   * The primary data without the request's sparse fieldset (never sent to the client), when
   * `fields` trimmed it: the reply's cache tags and expiry are read from it, since they depend on
   * attributes a client may leave out (an event's `identifier` addresses its other pages, a code's
   * `valid-till` ends its lookup's 200). Read from the trimmed body, a sparse write left those
   * pages cached and a sparse lookup stayed 200 after its code expired.
   */
  unsparse?: unknown;
  /**
   * The database snapshot a read was answered under, when the request asked (`snapshotAsked`;
   * never sent to the client).
   */
  snapshot?: string;
  /** Absolute path of a created resource (the gateway makes it a `Location` header). */
  location?: string;
  /**
   * Resources another service owns that `include` asked for, by type: the gateway fetches them
   * from their owner (see `resolveEndpoint` in subjects.ts) and adds them to `included`.
   */
  foreignIncludes?: Record<string, string[]>;
  /** Relationships owned by other services that `include` asked for (see ForeignRelation). */
  foreignRelations?: ForeignRelation[];
}
