/**
 * Keeps blueprint/*.apib a contract a client generator can use: writes the `+ Schema` of every
 * response from its example body (scripts/blueprint_schema.ts) and the error examples of every
 * action (hooks/error_examples.ts says which). The .apib files stay the committed contract;
 * scripts/blueprint_test.ts fails when they are not what this script would write.
 *
 * Run: `deno task blueprint` (rewrites the files), `deno task blueprint --check` (exit 1 when a
 * file is stale), `deno task blueprint --capture FILE`: error bodies from a Dredd run made with
 * `DREDD_CAPTURE=FILE deno task dredd` (the gateway's real answers) replace the examples'.
 */
import {
  type Action,
  examplesOf,
  parseBlueprint,
  type Payload,
  renderBlueprint,
  type Section,
  section,
} from "./blueprint_apib.ts";
import { compactJson, schemaLines } from "./blueprint_schema.ts";
import { CHALLENGE } from "../gateway/middleware/auth.ts";
import {
  baseRequest,
  BLUEPRINT_FILES,
  type ErrorKind,
  firstStringPath,
  generatedKind,
  handWritten,
  INVALID_BODIES,
  KINDS,
  MISSING_ID,
  plannedKinds,
} from "../hooks/error_examples.ts";

/** Real error bodies by action and kind (`captureKey`), from a Dredd run. */
export type Captured = Map<string, { status: number; body: string }>;

const ERROR_NAMES: Record<number, [string, string]> = {
  400: ["bad_request", "Bad request"],
  401: ["unauthorized", "Unauthorized"],
  403: ["forbidden", "Access forbidden"],
  404: ["not_found", "Object not found"],
  406: ["not_acceptable", "Not acceptable"],
  409: ["conflict", "Conflict"],
  413: ["payload_too_large", "Payload too large"],
  415: ["unsupported_media_type", "Unsupported media type"],
  422: ["unprocessable_entity", "Unprocessable entity"],
};

function templateBody(status: number): string[] {
  const [code, title] = ERROR_NAMES[status];
  const error = { status: String(status), code, title, detail: "Cannot continue" };
  return compactJson({ errors: [error], jsonapi: { version: "1.0" } }).split("\n");
}

function setHeader(lines: string[], name: string, value: string | undefined): string[] {
  const kept = lines.filter((line) => !line.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return value === undefined ? kept : [...kept, `${name}: ${value}`];
}

function otherType(type: unknown): string {
  return type === "event" ? "ticket" : "event";
}

function header(lines: string[], name: string): boolean {
  return lines.some((line) => line.toLowerCase().startsWith(`${name.toLowerCase()}:`));
}

function changedBody(kind: ErrorKind, lines: string[], path: string): string[] {
  if (kind === "invalid" && INVALID_BODIES[path]) {
    return compactJson(INVALID_BODIES[path]).split("\n");
  }
  if (kind === "malformed") return ['{ "data": '];
  if (!["wrong-type", "id-mismatch", "invalid"].includes(kind)) return lines;
  const body = JSON.parse(lines.join("\n"));
  if (kind === "wrong-type") {
    const items = Array.isArray(body.data) ? body.data : [body.data];
    for (const item of items) item.type = otherType(item.type);
  } else if (kind === "id-mismatch") body.data.id = MISSING_ID;
  else {
    const path = firstStringPath(body)!;
    const parent = path.slice(0, -1).reduce((at, key) => at[key], body);
    parent[path[path.length - 1]] = 12345;
  }
  return compactJson(body).split("\n");
}

function generatedRequest(kind: ErrorKind, base: Payload | undefined, path: string): Payload {
  let headers = [...(base ? section(base, "Headers")?.content ?? [] : [])];
  if (kind === "anonymous") headers = setHeader(headers, "Authorization", undefined);
  if (kind === "forbidden") {
    headers = setHeader(headers, "Authorization", "JWT <token of a user without the rights>");
  }
  if (kind === "accept") headers = setHeader(headers, "Accept", "text/html");
  // Without a section, drafter would read the request's description as its body.
  if (!headers.length && !(base && section(base, "Body"))) {
    headers = ["Accept: application/vnd.api+json"];
  }
  if (kind === "missing" && header(headers, "Authorization")) {
    headers = setHeader(headers, "Authorization", "JWT <admin token>");
  }
  const body = base ? section(base, "Body") : undefined;
  const sections: Section[] = [];
  if (headers.length) sections.push({ name: "Headers", content: headers });
  if (body) sections.push({ name: "Body", content: changedBody(kind, body.content, path) });
  return {
    kind: "Request",
    title: KINDS[kind].title,
    mediaType: kind === "media-type" ? "text/plain" : base?.mediaType || "application/vnd.api+json",
    description: [KINDS[kind].note],
    sections,
  };
}

function captureKey(action: string, kind: ErrorKind): string {
  return `${action} | ${kind}`;
}

/** The captured real body when its status is the kind's, else the old one or a template. */
function responseBody(
  kind: ErrorKind,
  action: string,
  old: Map<ErrorKind, string[]>,
  captured: Captured,
) {
  const status = KINDS[kind].status;
  const real = captured.get(captureKey(action, kind));
  if (real && real.status === status) {
    try {
      return compactJson(JSON.parse(real.body)).split("\n");
    } catch {
      // Not JSON: keep what the blueprint had.
    }
  }
  return old.get(kind) ?? templateBody(status);
}

/** Replaces the action's generated examples with the planned ones. */
function regenerateErrors(action: Action, kinds: ErrorKind[], captured: Captured): void {
  const old = new Map<ErrorKind, string[]>();
  for (const example of examplesOf(action)) {
    const kind = example.map(generatedKind).find(Boolean);
    const response = example.find((p) => p.kind === "Response");
    const body = response && section(response, "Body");
    if (kind && body) old.set(kind, body.content);
  }
  const kept = handWritten(action);
  const base = baseRequest(action);
  const name = `${action.group} > ${action.resource} > ${action.name}`;
  action.payloads = kept.flat();
  for (const kind of kinds) {
    const response: Payload = {
      kind: "Response",
      title: "",
      status: KINDS[kind].status,
      mediaType: "application/vnd.api+json",
      description: [],
      sections: [{ name: "Body", content: responseBody(kind, name, old, captured) }],
    };
    action.payloads.push(generatedRequest(kind, base, action.path), response);
  }
}

/**
 * Documents on every 401 response the challenge the gateway sends with it (RFC 9110 §15.5.2),
 * first among its sections, as the `Location` of a 201 is.
 */
function documentChallenges(action: Action): void {
  for (const payload of action.payloads) {
    if (payload.kind !== "Response" || payload.status !== 401) continue;
    const headers = section(payload, "Headers");
    const content = setHeader(headers?.content ?? [], "WWW-Authenticate", CHALLENGE);
    if (headers) headers.content = content;
    else payload.sections.unshift({ name: "Headers", content });
  }
}

/** Sets every response's Schema from its body (after the body); drops it when not JSON. */
function regenerateSchemas(action: Action): void {
  for (const payload of action.payloads) {
    if (payload.kind !== "Response") continue;
    payload.sections = payload.sections.filter((s) => s.name !== "Schema");
    const body = section(payload, "Body");
    const schema = body && schemaLines(body.content);
    if (schema) payload.sections.push({ name: "Schema", content: schema });
  }
}

/** The blueprint text the generator writes for `text` (the file's current content). */
export function generateBlueprint(file: string, text: string, captured: Captured = new Map()) {
  const chunks = parseBlueprint(text);
  const actions = chunks.flatMap((chunk) => "action" in chunk ? [chunk.action] : []);
  const planned = plannedKinds(file, actions);
  for (const action of actions) {
    regenerateErrors(action, planned.get(action) ?? [], captured);
    documentChallenges(action);
    regenerateSchemas(action);
  }
  return renderBlueprint(chunks);
}

function readCapture(path: string | undefined): Captured {
  const captured: Captured = new Map();
  if (!path) return captured;
  for (const line of Deno.readTextFileSync(path).split("\n")) {
    if (!line.trim()) continue;
    const entry = JSON.parse(line);
    const action = entry.name.replace(/ > Example \d+$/, "");
    captured.set(captureKey(action, entry.kind), { status: entry.status, body: entry.body });
  }
  return captured;
}

const root = new URL("../", import.meta.url);

async function main(args: string[]): Promise<number> {
  const check = args.includes("--check");
  const captureAt = args.indexOf("--capture");
  const captured = readCapture(captureAt >= 0 ? args[captureAt + 1] : undefined);
  let stale = 0;
  for (const file of BLUEPRINT_FILES) {
    const url = new URL(file, root);
    const text = await Deno.readTextFile(url);
    const next = generateBlueprint(file, text, captured);
    if (next === text) continue;
    stale++;
    if (check) console.error(`${file} is stale: run deno task blueprint`);
    else await Deno.writeTextFile(url, next);
  }
  return check && stale ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
