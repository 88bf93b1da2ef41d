/**
 * Dredd hooks for the generated error examples (hooks/error_examples.ts): each runs with the
 * fixtures and caller of its action's first successful example (the blueprint's own hook file
 * prepares them), then this file makes the one change its kind needs and the blueprint cannot
 * say: no token, another caller, a missing id or an unknown parameter in the URL, a body over
 * the size limit. Documentation-only examples are skipped here, each named in DOCUMENTATION_ONLY.
 *
 * Its hooks are registered once all hook files are loaded, so they run after the blueprint hook
 * files' own (see registerHooks). With `DREDD_CAPTURE=FILE` the real status and body of every
 * generated example go to FILE (one JSON object a line) for `deno task blueprint --capture FILE`.
 */
import { tokenFor } from "./factories.ts";
import {
  BLUEPRINT_FILES,
  DOCUMENTATION_ONLY,
  type ErrorKind,
  generatedExamplesOf,
  MISSING_ID,
  UNKNOWN_PARAMETER,
} from "./error_examples.ts";
import { hooks, type Transaction } from "./hooks.ts";
import { hookEnv } from "./reset.ts";

/** The user of each blueprint's fixtures who has no rights beyond logging in. */
const UNPRIVILEGED: Record<string, string> = {
  "blueprint/audit.apib": "2",
  "blueprint/catalog.apib": "4",
  "blueprint/discounts.apib": "4",
  "blueprint/payments.apib": "4",
};

/** Every blueprint's fixtures make user 1 the admin. */
const ADMIN = "1";

/** Comfortably over the gateway's default BODY_LIMIT_BYTES (1,000,000). */
const OVERSIZE = 1_000_100;

/** Puts MISSING_ID in place of the path's first id (the segment after the collection). */
export function withMissingId(uri: string): string {
  const [path, query] = uri.split("?");
  const parts = path.split("/");
  // ["", "v1", collection, id, ...]
  if (parts.length > 3) parts[3] = MISSING_ID;
  return parts.join("/") + (query === undefined ? "" : `?${query}`);
}

export function withUnknownParameter(uri: string): string {
  return `${uri}${uri.includes("?") ? "&" : "?"}${UNKNOWN_PARAMETER}=1`;
}

/** Dredd requests `fullPath` (the server's path prefix plus `request.uri`): change both. */
function changeUri(transaction: Transaction, change: (uri: string) => string): void {
  const before = transaction.request.uri;
  const after = change(before);
  transaction.request.uri = after;
  const fullPath = transaction.fullPath;
  if (typeof fullPath === "string" && fullPath.endsWith(before)) {
    transaction.fullPath = fullPath.slice(0, fullPath.length - before.length) + after;
  } else transaction.fullPath = after;
}

async function apply(kind: ErrorKind, file: string, transaction: Transaction): Promise<void> {
  const request = transaction.request;
  switch (kind) {
    case "anonymous":
      delete request.headers.Authorization;
      break;
    case "forbidden": {
      const user = UNPRIVILEGED[file];
      // A blueprint without its entry would sign the 403 examples as no user: a 401, not a 403.
      if (user === undefined) {
        throw new Error(`hooks/errors.ts: UNPRIVILEGED has no user for ${file}`);
      }
      const token = await tokenFor(user, hookEnv("JWT_SECRET"));
      request.headers.Authorization = `JWT ${token}`;
      break;
    }
    case "missing":
      // An admin: other callers may be refused (403) before the lookup.
      if (request.headers.Authorization) {
        request.headers.Authorization = `JWT ${await tokenFor(ADMIN, hookEnv("JWT_SECRET"))}`;
      }
      changeUri(transaction, withMissingId);
      break;
    case "bad-query":
      changeUri(transaction, withUnknownParameter);
      break;
    case "too-large":
      request.body = request.body + " ".repeat(OVERSIZE);
      break;
  }
}

const capturePath = Deno.env.get("DREDD_CAPTURE");
const generated = new Map<string, ErrorKind>();

/**
 * Registered in beforeAll, after every hook file was imported: Dredd imports hook files in
 * alphabetical order, and a named `before` hook runs in registration order, so these run after
 * the blueprint hook file's own preparation whatever the files are called.
 */
function registerHooks(): void {
  for (const file of BLUEPRINT_FILES) {
    for (const example of generatedExamplesOf(file)) {
      generated.set(example.name, example.kind);
      if (DOCUMENTATION_ONLY[example.name]) continue;
      hooks.before(example.name, (transaction) => apply(example.kind, file, transaction));
    }
  }
  // Named in DOCUMENTATION_ONLY with the reason, and printed by the Dredd runner.
  for (const name of Object.keys(DOCUMENTATION_ONLY)) {
    hooks.before(name, (transaction) => {
      transaction.skip = true;
    });
  }
}

let registered = false;
hooks.beforeAll(() => {
  if (!registered) registerHooks();
  registered = true;
});

/** With several blueprints, Dredd's name starts with the API's name; ours do not. */
function shortName(transaction: Transaction): string {
  const apiName = (transaction.origin as { apiName?: string } | undefined)?.apiName;
  const name = transaction.name;
  return apiName && name.startsWith(`${apiName} > `) ? name.slice(apiName.length + 3) : name;
}

if (capturePath) {
  hooks.afterEach(async (transaction) => {
    const name = shortName(transaction);
    const kind = generated.get(name);
    if (!kind || !transaction.real) return;
    const { statusCode: status, body } = transaction.real;
    const entry = { name, kind, status, body };
    await Deno.writeTextFile(capturePath, JSON.stringify(entry) + "\n", { append: true });
  });
}
