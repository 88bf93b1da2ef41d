/**
 * The error examples every blueprint action carries besides its hand-written ones: which errors
 * an action can answer (401, 403, 400, 404, 406, 409, 413, 415, 422), how the generator
 * (scripts/blueprint.ts) writes them into blueprint/*.apib, and how the Dredd hooks
 * (hooks/errors.ts) bring each one about. Generated examples are the ones whose request carries
 * one of the titles below (`+ Request Without a token (...)`).
 *
 * The rules give the errors from the action's shape (method, path, body, token); `NOT_RETURNED`
 * removes, with a reason, those an action cannot answer; `DOCUMENTATION_ONLY` is the one list of
 * error examples Dredd does not run, each with the reason.
 */
import {
  type Action,
  examplesOf,
  parseBlueprint,
  type Payload,
  section,
  transactionName,
} from "../scripts/blueprint_apib.ts";
import { serviceNames } from "@shared/contracts/mod.ts";

export type ErrorKind =
  | "anonymous"
  | "forbidden"
  | "missing"
  | "bad-query"
  | "malformed"
  | "media-type"
  | "accept"
  | "wrong-type"
  | "id-mismatch"
  | "invalid"
  | "too-large";

export interface KindInfo {
  status: number;
  /** The generated request's name in the blueprint, unique per kind. */
  title: string;
  /** What the request does differently from the action's first example. */
  note: string;
}

/** The id the hooks put into the path for `missing`. */
export const MISSING_ID = "99999";
/**
 * The query parameter the hooks add for `bad-query`: one in a JSON:API family (a fieldset of a type
 * no action knows), since names outside the families are ignored, as the original ignored them.
 */
export const UNKNOWN_PARAMETER = "fields[nope]";

export const KINDS: Record<ErrorKind, KindInfo> = {
  "anonymous": {
    status: 401,
    title: "Without a token",
    note: "Sent without `Authorization`: this action needs a logged-in user.",
  },
  "forbidden": {
    status: 403,
    title: "Without the rights",
    note: "Sent by a logged-in user who has no role that allows this.",
  },
  "missing": {
    status: 404,
    title: "For an id that does not exist",
    note: `Sent with \`${MISSING_ID}\` as the id in the path (by an admin, where a token is ` +
      "needed: others may get `403` first): no such resource; a second `DELETE` of the same " +
      "resource answers the same.",
  },
  "bad-query": {
    status: 400,
    title: "With an unknown query parameter",
    note:
      `Sent with \`?${UNKNOWN_PARAMETER}=1\`: a parameter of the JSON:API families (\`filter\`, ` +
      "`sort`, `include`, `page[...]`, `fields[...]`) that this action does not know is refused, " +
      "and `source.parameter` names it. Names outside those families are ignored, as the " +
      "original ignored them.",
  },
  "malformed": {
    status: 400,
    title: "With a malformed body",
    note: "The body is not a JSON object.",
  },
  "media-type": {
    status: 415,
    title: "Without the JSON:API Content-Type",
    note: "Sent as `text/plain` (a body without `Content-Type` gets the same answer): the body " +
      "must be `application/vnd.api+json` without parameters, or `application/json` where " +
      "the action takes plain JSON.",
  },
  "accept": {
    status: 406,
    title: "Accepting only HTML",
    note: "Sent with `Accept: text/html`, which allows no type this API answers in.",
  },
  "wrong-type": {
    status: 409,
    title: "With the wrong resource type",
    note: "The body's `type` is not the type this endpoint takes.",
  },
  "id-mismatch": {
    status: 409,
    title: "With an id that is not the URL's",
    note: "The body's `data.id` differs from the id in the path.",
  },
  "invalid": {
    status: 422,
    title: "With an invalid attribute",
    note: "A member of the body has a wrong type or value; `source.pointer` names it.",
  },
  "too-large": {
    status: 413,
    title: "With a body over the size limit",
    note: "Sent with a body of more than 1,000,000 bytes (`BODY_LIMIT_BYTES`, the default); " +
      "the example shows its start.",
  },
};

const KIND_BY_TITLE = new Map(
  Object.entries(KINDS).map(([kind, info]) => [info.title, kind as ErrorKind]),
);

/** The kind of a generated request, or undefined for a hand-written one. */
export function generatedKind(payload: Payload): ErrorKind | undefined {
  return payload.kind === "Request" ? KIND_BY_TITLE.get(payload.title) : undefined;
}

/**
 * Errors the rules would give an action but it cannot answer, by `file > action name` (the
 * transaction name without the example): the reason says why.
 */
const NOT_RETURNED: Record<string, { kinds: ErrorKind[]; reason: string }> = {
  "blueprint/catalog.apib > Health > Health > Check health": {
    kinds: ["bad-query", "accept"],
    reason: "the health check is for probes: it reads no query and always answers JSON",
  },
  "blueprint/catalog.apib > Health > Liveness > Check liveness": {
    kinds: ["bad-query", "accept"],
    reason: "the health check is for probes: it reads no query and always answers JSON",
  },
  "blueprint/catalog.apib > Health > Readiness > Check readiness": {
    kinds: ["bad-query", "accept"],
    reason: "the health check is for probes: it reads no query and always answers JSON",
  },
  "blueprint/catalog.apib > Auth > Fresh login > Log in again": {
    kinds: ["forbidden"],
    reason: "every logged-in user may log in again (with their own credentials)",
  },
  "blueprint/catalog.apib > Auth > Change password > Change the password": {
    kinds: ["forbidden"],
    reason: "every logged-in user may change their own password",
  },
  "blueprint/catalog.apib > Events > Events > Create an event": {
    kinds: ["forbidden"],
    reason: "every logged-in user may create an event (and becomes its owner)",
  },
  "blueprint/payments.apib > Webhooks > Stripe webhooks > Receive a Stripe event": {
    kinds: ["media-type", "accept"],
    reason: "Stripe's own request decides the headers; the signature is what is checked",
  },
};

/**
 * Bodies for `invalid` where breaking the first string attribute is not a validation error (by
 * action path): the price preview's code text would only be unknown (404).
 */
export const INVALID_BODIES: Record<string, unknown> = {
  "/v1/orders/calculate-amount": { tickets: [], "discount-code": "1" },
};

/**
 * The one list of blueprint examples Dredd does not run, by transaction name, with the reason.
 * The Dredd runner prints it; they are skipped (hooks/errors.ts), never silently.
 */
export const DOCUMENTATION_ONLY: Record<string, string> = {};

const WRITES = new Set(["POST", "PATCH", "PUT", "DELETE"]);

function header(payload: Payload | undefined, name: string): string | undefined {
  const lines = payload ? section(payload, "Headers")?.content ?? [] : [];
  const prefix = `${name.toLowerCase()}:`;
  const line = lines.find((l) => l.toLowerCase().startsWith(prefix));
  return line?.slice(prefix.length).trim();
}

function jsonBody(payload: Payload | undefined): Record<string, unknown> | undefined {
  const body = payload ? section(payload, "Body") : undefined;
  if (!body) return undefined;
  try {
    const parsed = JSON.parse(body.content.join("\n"));
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function hasTypedData(body: Record<string, unknown> | undefined): boolean {
  const data = body?.data as Record<string, unknown> | Record<string, unknown>[] | undefined;
  if (Array.isArray(data)) return data.some((item) => typeof item?.type === "string");
  return typeof data?.type === "string";
}

function succeeds(example: Payload[]): boolean {
  return example.some((p) => p.kind === "Response" && (p.status ?? 0) < 300);
}

/** The index of the action's first successful example: what generated examples start from. */
function baseExampleIndex(action: Action): number {
  return Math.max(0, examplesOf(action).findIndex((ex) => !isGenerated(ex) && succeeds(ex)));
}

/** The base example's request (undefined when it sends Dredd's default request). */
export function baseRequest(action: Action): Payload | undefined {
  const example = examplesOf(action)[baseExampleIndex(action)] ?? [];
  return example.find((p) => p.kind === "Request");
}

function isGenerated(example: Payload[]): boolean {
  return example.some((p) => generatedKind(p));
}

/** Statuses the hand-written examples already show. */
function shownStatuses(action: Action): Set<number> {
  const shown = new Set<number>();
  for (const example of handWritten(action)) {
    for (const p of example) if (p.kind === "Response" && p.status) shown.add(p.status);
  }
  return shown;
}

export function handWritten(action: Action): Payload[][] {
  return examplesOf(action).filter((example) => !isGenerated(example));
}

/** The rules: which errors an action's shape says it can answer. */
function ruleKinds(action: Action): ErrorKind[] {
  const request = baseRequest(action);
  const body = jsonBody(request);
  const hasBody = !!(request && section(request, "Body"));
  const kinds: ErrorKind[] = [];
  if (header(request, "Authorization")) kinds.push("anonymous");
  if (header(request, "Authorization")) kinds.push("forbidden");
  if (/\{[^?}]+\}/.test(action.path)) kinds.push("missing");
  // Relationship endpoints and DELETE take no query parameters and ignore unknown ones.
  if (action.method === "GET" && !action.path.includes("/relationships/")) kinds.push("bad-query");
  if (hasBody && WRITES.has(action.method)) {
    kinds.push("malformed", "media-type", "too-large");
    if (hasTypedData(body)) kinds.push("wrong-type");
    const data = body?.data as Record<string, unknown> | undefined;
    if (action.method === "PATCH" && typeof data?.id === "string") kinds.push("id-mismatch");
    if (firstStringPath(body) || INVALID_BODIES[action.path]) kinds.push("invalid");
  }
  kinds.push("accept");
  return kinds;
}

/**
 * The JSON path of the attribute `invalid` breaks: the first string attribute of `data`, or of
 * a body without `data` (login).
 */
export function firstStringPath(body: Record<string, unknown> | undefined): string[] | undefined {
  if (!body) return undefined;
  const data = body.data as Record<string, unknown> | undefined;
  const attributes = data && !Array.isArray(data)
    ? data.attributes as Record<string, unknown> | undefined
    : undefined;
  const [scope, path] = attributes ? [attributes, ["data", "attributes"]] : [body, []];
  if (!scope || typeof scope !== "object" || "data" in scope) return undefined;
  const key = Object.keys(scope).find((k) => typeof scope[k] === "string");
  return key ? [...path, key] : undefined;
}

function actionKey(file: string, action: Action): string {
  return `${file} > ${action.group} > ${action.resource} > ${action.name}`;
}

function operationKey(action: Action): string {
  return `${action.method} ${action.path}`;
}

/** Whether `a` and `b` name the same route: equal segments, or a `{param}` on either side. */
function sameRoute(a: Action, b: Action): boolean {
  const one = a.path.split("/");
  const other = b.path.split("/");
  const param = (segment: string) => segment.startsWith("{");
  return a.method === b.method && one.length === other.length &&
    one.every((segment, i) => segment === other[i] || param(segment) || param(other[i]));
}

/**
 * The errors of an action that only shows errors. When another action documents its route
 * succeeding, none: that action lists them. A route that never succeeds (a relationship clients
 * may not write) gets only its 401 without a token, so the blueprint says who may call it; its
 * other errors would describe a request that is refused anyway.
 */
function refusalKinds(action: Action, actions: Action[]): ErrorKind[] {
  const documentedElsewhere = actions.some((other) =>
    other !== action && sameRoute(other, action) && handWritten(other).some(succeeds)
  );
  const needsToken = !!header(baseRequest(action), "Authorization");
  if (documentedElsewhere || !needsToken || shownStatuses(action).has(KINDS.anonymous.status)) {
    return [];
  }
  return ["anonymous"];
}

/**
 * The errors to generate for each action of a blueprint, in order. An action that only shows
 * errors gets `refusalKinds`; one that repeats an earlier action's method and path (a search)
 * gets none: its operation's errors are listed once, under its first action. A status a
 * hand-written example shows is not repeated.
 */
export function plannedKinds(file: string, actions: Action[]): Map<Action, ErrorKind[]> {
  const planned = new Map<Action, ErrorKind[]>();
  const seen = new Set<string>();
  for (const action of actions) {
    const operation = operationKey(action);
    if (seen.has(operation)) {
      planned.set(action, []);
      continue;
    }
    if (!handWritten(action).some(succeeds)) {
      planned.set(action, refusalKinds(action, actions));
      continue;
    }
    seen.add(operation);
    const shown = shownStatuses(action);
    const excluded = new Set(NOT_RETURNED[actionKey(file, action)]?.kinds ?? []);
    const kinds = ruleKinds(action).filter((kind) =>
      !excluded.has(kind) && (!shown.has(KINDS[kind].status) || kind === "id-mismatch")
    );
    planned.set(action, kinds);
  }
  return planned;
}

export interface GeneratedExample {
  /** The transaction name Dredd prints (without the API name). */
  name: string;
  /** The name of the action's first successful example, whose fixtures and caller it reuses. */
  baseName: string;
  kind: ErrorKind;
}

/** The generated examples of one blueprint's text, as Dredd will name them. */
export function generatedExamples(text: string): GeneratedExample[] {
  const found: GeneratedExample[] = [];
  for (const chunk of parseBlueprint(text)) {
    if (!("action" in chunk)) continue;
    const examples = examplesOf(chunk.action);
    examples.forEach((example, index) => {
      const kind = example.map(generatedKind).find(Boolean);
      if (!kind) return;
      found.push({
        name: transactionName(chunk.action, index, examples.length),
        baseName: transactionName(chunk.action, baseExampleIndex(chunk.action), examples.length),
        kind,
      });
    });
  }
  return found;
}

/** The blueprints with generated examples, relative to the repository root: one per service. */
export const BLUEPRINT_FILES = [...serviceNames].sort().map((name) => `blueprint/${name}.apib`);

const root = new URL("../", import.meta.url);

/** Generated examples of one blueprint file, read from the repository. */
export function generatedExamplesOf(file: string): GeneratedExample[] {
  return generatedExamples(Deno.readTextFileSync(new URL(file, root)));
}

/**
 * A hook file's plans extended to the generated examples (each uses its action's first example's
 * plan) and to first examples that gained an `Example 1` suffix when errors were added.
 */
export function withGeneratedExamples<P>(
  plans: Record<string, P>,
  file: string,
): Record<string, P> {
  const all = { ...plans };
  const planOf = (name: string) => all[name] ?? all[name.replace(/ > Example 1$/, "")];
  for (const example of generatedExamplesOf(file)) {
    const base = planOf(example.baseName);
    if (base !== undefined) {
      all[example.baseName] ??= base;
      all[example.name] ??= base;
    }
  }
  return all;
}
