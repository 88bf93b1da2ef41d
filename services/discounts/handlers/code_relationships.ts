/**
 * Writes of `/v1/discount-codes/{id}/relationships/<rel>`: PATCH replaces `tickets` or `events`,
 * POST adds members, DELETE removes them. Each is the PATCH of the code with that relationship:
 * the same permission (`guardCode`), and the same locked, checked, fact-recording update
 * (`saveCodeUpdate`) on the merged state. `event` and `marketer` are not writable this way: 403,
 * as JSON:API asks for unsupported relationship updates. The answer is 200 with the linkage (and
 * what `include` asks for on the code, its query read before anything is written). Errors point
 * into the document sent (`/data`), not into the code's resource document the checks speak of.
 */
import {
  BadRequestError,
  ConflictError,
  type ErrorObject,
  ForbiddenError,
  UnprocessableError,
} from "@shared/errors.ts";
import { checkForeignFieldsets, notFound } from "@shared/handlers/mod.ts";
import { parseSingleQuery, relationshipQuerySpec } from "@shared/query.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import type { DiscountsContext } from "../context.ts";
import { codeDef, codeQuery, codeRelations } from "../resources.ts";
import { MAX_LINKS } from "./code_input.ts";
import { type LinkChange, saveCodeUpdate } from "./code_update.ts";
import { renderCodeLinks } from "./codes.ts";
import { guardCode } from "./common.ts";

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The ids of a to-many relationship document `{ data: [{ type, id }, ...] }`, deduplicated. */
function parseLinkage(body: unknown, type: string): string[] {
  if (!isObject(body) || !Array.isArray(body.data)) {
    throw new BadRequestError(
      "Cannot read relationship: the body must be an object whose data is an array",
      { pointer: "/data" },
    );
  }
  if (body.data.length > MAX_LINKS) {
    throw new UnprocessableError(
      `Cannot save relationship: it takes at most ${MAX_LINKS} items`,
      { pointer: "/data" },
    );
  }
  const ids = body.data.map((item: unknown, i: number) => {
    const pointer = `/data/${i}`;
    if (
      !isObject(item) || typeof item.type !== "string" ||
      (typeof item.id !== "string" && typeof item.id !== "number")
    ) {
      throw new BadRequestError(
        "Cannot read relationship: each item must be an object with a string type and id",
        { pointer },
      );
    }
    if (item.type !== type) {
      throw new ConflictError(
        `Cannot save relationship: expected type "${type}", got "${item.type}"`,
        { pointer: `${pointer}/type` },
      );
    }
    return String(item.id);
  });
  return [...new Set(ids)];
}

/** `/data/relationships/tickets`, `/data/attributes/value`: places only a code's document has. */
const CODE_DOCUMENT_POINTER = /^\/data\/(relationships|attributes)(\/|$)/;

function linkagePointer(pointer: string | undefined): string | undefined {
  return pointer !== undefined && CODE_DOCUMENT_POINTER.test(pointer) ? "/data" : pointer;
}

/**
 * The update's checks report on the code's resource document (`/data/relationships/tickets`,
 * `/data/attributes/value` for an added ticket priced below the amount); a relationship write
 * sent `{ data: [...] }`, where those name nothing (JSON:API: a pointer names a value of the
 * request document). Its linkage is what broke them: `/data`.
 */
async function pointingIntoLinkage<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (!(error instanceof UnprocessableError || error instanceof ConflictError)) throw error;
    const more = error.more.map((object: ErrorObject) =>
      object.source?.pointer === undefined ? object : {
        ...object,
        source: { ...object.source, pointer: linkagePointer(object.source.pointer) },
      }
    );
    const options = { pointer: linkagePointer(error.source?.pointer), more, cause: error };
    throw error instanceof ConflictError
      ? new ConflictError(error.message, options)
      : new UnprocessableError(error.message, options);
  }
}

/** One verb: `op` undefined replaces the linkage, otherwise adds or removes members. */
async function writeRelationship(
  ctx: DiscountsContext,
  req: HttpRequest,
  op?: LinkChange["op"],
): Promise<HttpReply> {
  const name = req.params.rel;
  const rel = codeRelations[name] ?? notFound("relationship", name);
  const target = await guardCode(ctx, req, "change this discount code");
  if (target.code.deleted_at) notFound("discount code", req.params.id);
  if (name !== "tickets" && name !== "events") {
    throw new ForbiddenError(
      `Cannot update relationship ${name}: it is set when the code is created`,
    );
  }
  const query = parseSingleQuery(req.query, relationshipQuerySpec(codeQuery, name));
  await checkForeignFieldsets(ctx.bus, codeDef, query, req.actor);
  const ids = parseLinkage(req.body, rel.type);
  const row = await pointingIntoLinkage(() =>
    op
      ? saveCodeUpdate(ctx, req, {
        ...target,
        doc: { attributes: {}, relationships: {} },
        change: { name, op, ids },
      })
      : saveCodeUpdate(ctx, req, {
        ...target,
        doc: {
          attributes: {},
          relationships: { [name]: ids.map((id) => ({ type: rel.type, id })) },
        },
      })
  );
  return renderCodeLinks(req, row, rel, query);
}

/** `PATCH /v1/discount-codes/{id}/relationships/<rel>`: replaces the linkage. */
export function replaceCodeLinks(ctx: DiscountsContext, req: HttpRequest): Promise<HttpReply> {
  return writeRelationship(ctx, req);
}

/** `POST /v1/discount-codes/{id}/relationships/<rel>`: adds members. */
export function addCodeLinks(ctx: DiscountsContext, req: HttpRequest): Promise<HttpReply> {
  return writeRelationship(ctx, req, "add");
}

/** `DELETE /v1/discount-codes/{id}/relationships/<rel>`: removes members. */
export function removeCodeLinks(ctx: DiscountsContext, req: HttpRequest): Promise<HttpReply> {
  return writeRelationship(ctx, req, "remove");
}
