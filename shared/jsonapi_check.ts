/**
 * Checks a compound document for JSON:API "full linkage": every resource in `included` is reached
 * from the primary data through relationship `data`, and every relationship an `include` path
 * names carries `data`. Tests run every document they get through it (testing/system.ts).
 *
 * @example
 * ```ts
 * import { linkageProblems } from "@shared/jsonapi_check.ts";
 * const doc = {
 *   data: { type: "event", id: "1", relationships: { tickets: { links: {} } } },
 *   included: [{ type: "ticket", id: "7" }],
 * };
 * linkageProblems(doc, { include: ["tickets"] });
 * // ['event 1: relationship "tickets" is included but has no data',
 * //  "included ticket 7 is not reachable from the primary data"]
 * ```
 */
import { includePaths } from "./fieldset_names.ts";

interface Resource {
  type: string;
  id: string;
  relationships?: Record<string, { data?: unknown } | undefined>;
}

export interface LinkageCheckOptions {
  /** The request's include paths, e.g. ["tickets", "event.event-topic"]. */
  include?: string[];
  /**
   * The request had sparse fieldsets: JSON:API lets them drop relationships, and so linkage
   * (the one exception to full linkage). Relationships that are absent are then not reported.
   */
  sparse?: boolean;
  /**
   * The document answers `/<collection>/{id}/relationships/<name>`: its data are identifiers, not
   * resources, and each include path starts at that relationship (JSON:API's example:
   * `/articles/1/relationships/comments?include=comments.author`).
   */
  relationship?: string;
}

function isResource(value: unknown): value is Resource {
  const r = value as Resource | null;
  return typeof r === "object" && r !== null && typeof r.type === "string" &&
    typeof r.id === "string";
}

const keyOf = (r: { type: string; id: string }) => `${r.type} ${r.id}`;

function identifiers(data: unknown): { type: string; id: string }[] {
  if (Array.isArray(data)) return data.filter(isResource);
  return isResource(data) ? [data] : [];
}

function primaryOf(document: Record<string, unknown>): Resource[] {
  return identifiers(document.data) as Resource[];
}

function reachable(primary: Resource[], byKey: Map<string, Resource>): Set<string> {
  const seen = new Set(primary.map(keyOf));
  const queue = [...primary];
  while (queue.length) {
    const resource = queue.shift()!;
    for (const relationship of Object.values(resource.relationships ?? {})) {
      for (const target of identifiers(relationship?.data)) {
        const key = keyOf(target);
        const found = byKey.get(key);
        if (seen.has(key) || !found) continue;
        seen.add(key);
        queue.push(found);
      }
    }
  }
  return seen;
}

function pathProblems(
  path: string,
  start: Resource[],
  byKey: Map<string, Resource>,
  sparse: boolean,
): string[] {
  const problems: string[] = [];
  let level = start;
  for (const name of path.split(".")) {
    const next: Resource[] = [];
    for (const resource of level) {
      const relationship = resource.relationships?.[name];
      if (!relationship && sparse) continue;
      if (!relationship || !("data" in relationship)) {
        problems.push(`${keyOf(resource)}: relationship "${name}" is included but has no data`);
        continue;
      }
      for (const target of identifiers(relationship.data)) {
        const found = byKey.get(keyOf(target));
        if (found) next.push(found);
      }
    }
    level = next;
  }
  return problems;
}

/**
 * What breaks full linkage in `document` (empty when nothing does): included resources the
 * primary data cannot reach, relationships named by `include` without `data`, and resources that
 * appear twice.
 */
export function linkageProblems(document: unknown, options: LinkageCheckOptions = {}): string[] {
  if (typeof document !== "object" || document === null || !("data" in document)) return [];
  const doc = document as Record<string, unknown>;
  const included = Array.isArray(doc.included) ? doc.included.filter(isResource) : [];
  const problems: string[] = [];
  const byKey = new Map<string, Resource>();
  const linkage = options.relationship !== undefined;
  for (const resource of [...(linkage ? [] : primaryOf(doc)), ...included]) {
    if (byKey.has(keyOf(resource))) problems.push(`${keyOf(resource)} appears twice`);
    byKey.set(keyOf(resource), resource);
  }
  // A relationship document's identifiers name included resources (or nothing).
  const primary = linkage
    ? primaryOf(doc).map((id) => byKey.get(keyOf(id)) ?? { type: id.type, id: id.id })
    : primaryOf(doc);
  // A write's answer may say that another service's resources could not be included (the
  // gateway's `meta.include-unavailable`): the write happened, so it is answered without them.
  const incomplete = typeof (doc.meta as Record<string, unknown> | undefined)?.[
    "include-unavailable"
  ] === "string";
  for (const path of incomplete ? [] : options.include ?? []) {
    if (!linkage) {
      problems.push(...pathProblems(path, primary, byKey, options.sparse ?? false));
      continue;
    }
    const [first, ...rest] = path.split(".");
    if (first !== options.relationship) {
      problems.push(`include path "${path}" does not start at "${options.relationship}"`);
    } else if (rest.length) {
      problems.push(...pathProblems(rest.join("."), primary, byKey, options.sparse ?? false));
    }
  }
  if (!options.sparse) {
    const seen = reachable(primary, byKey);
    for (const resource of included) {
      if (!seen.has(keyOf(resource))) {
        problems.push(`included ${keyOf(resource)} is not reachable from the primary data`);
      }
    }
  }
  return problems;
}

/**
 * The `include` paths and sparse-fieldset flag of a request URL, as `linkageProblems` takes
 * them.
 *
 * @example
 * ```ts
 * import { linkageOptionsOf } from "@shared/jsonapi_check.ts";
 * linkageOptionsOf("/v1/events?include=tickets,owner"); // { include: ["tickets", "owner"], sparse: false }
 * ```
 */
export function linkageOptionsOf(url: string): LinkageCheckOptions {
  const { pathname, searchParams: params } = new URL(url, "http://localhost");
  const include = params.get("include");
  const relationship = /\/relationships\/([^/]+)$/.exec(pathname)?.[1];
  return {
    include: include ? includePaths(include).filter(Boolean) : [],
    sparse: [...params.keys()].some((key) => key.startsWith("fields[")),
    ...(relationship === undefined ? {} : { relationship: decodeURIComponent(relationship) }),
  };
}
