/**
 * Writes blueprint/asyncapi.yaml, the AsyncAPI 3 description of the facts on the bus: one
 * channel per fact type registered in shared/fact_catalog.ts (subject
 * `<prefix>.facts.<service>.<type>.<verb>`), each message a CloudEvents 1.0 envelope (generated
 * from `factEnvelopeSchema`, shared/facts.ts) whose `data` is the JSON Schema generated from the
 * type's zod payload schema (shared/schemas/facts.ts), with the registry's example. Nothing is
 * written twice. `scripts/asyncapi_test.ts` fails when the committed file is not what this
 * script writes, checks it with the AsyncAPI parser, and validates real facts against it.
 *
 * Run: `deno task asyncapi` (add `--check` to only compare).
 */
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { CLOUDEVENTS_JSON, factEnvelopeSchema } from "@shared/facts.ts";
import { type FactKind, factKinds } from "@shared/fact_catalog.ts";

export const OUTPUT = new URL("../blueprint/asyncapi.yaml", import.meta.url);

type Json = Record<string, unknown>;

/** "users-events-role" + "logged-in" -> "UsersEventsRoleLoggedIn" (names of channels). */
function pascal(...parts: string[]): string {
  return parts.flatMap((part) => part.split(/[^A-Za-z0-9]+/))
    .map((word) => word ? word[0].toUpperCase() + word.slice(1) : "").join("");
}

/**
 * Tidies zod's output: `$schema` goes. The regular expression zod puts beside `format: date-time`
 * stays: the format alone (RFC 3339) admits `t`/`z` in lowercase, a space for the `T`, a leap
 * second or an offset without its colon, which our consumers' zod check parks; left out of this
 * document until 2026-12-05, a subscriber validating from it took what ours refuse.
 */
function tidy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(tidy);
  if (typeof value !== "object" || value === null) return value;
  const entries = Object.entries(value as Json)
    .filter(([key]) => key !== "$schema")
    .map(([key, item]) => [key, tidy(item)]);
  return Object.fromEntries(entries);
}

/**
 * zod's output mode gives every object `additionalProperties: false`, strict or not: it goes for
 * a `z.object` (whose parse ignores unknown keys, so a subscriber accepts fields added later, as
 * the README's evolution rules say) and stays for a `z.strictObject`, which refuses them. Dropped
 * for both until 2026-12-04, a strict payload looked open and the gate let it through.
 */
function openWhereZodIs(ctx: { zodSchema: z.core.$ZodTypes; jsonSchema: Json }): void {
  const def = ctx.zodSchema._zod.def;
  if (def.type === "object" && def.catchall === undefined) {
    if (ctx.jsonSchema.additionalProperties === false) delete ctx.jsonSchema.additionalProperties;
  }
}

/** A zod schema as JSON Schema (draft 7, which AsyncAPI schemas build on). */
export function jsonSchemaOf(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, {
    target: "draft-7",
    io: "output",
    override: (ctx) => openWhereZodIs(ctx as Parameters<typeof openWhereZodIs>[0]),
  });
  return tidy(json) as Json;
}

/** The CloudEvents envelope without `data` (each message adds its own). */
export function envelopeJsonSchema(): Json {
  const schema = jsonSchemaOf(factEnvelopeSchema.omit({ data: true }));
  return { ...schema, title: "CloudEvent", description: "A fact: CloudEvents 1.0, structured." };
}

/** The name of a payload schema under components.schemas (its zod `title`). */
export function dataSchemaName(kind: FactKind): string {
  const title = jsonSchemaOf(kind.data).title;
  return typeof title === "string" ? title : `${pascal(kind.resource)}Data`;
}

/**
 * The example payload of `kind`, as a real fact of its verb carries it: a deletion of a resource
 * with a trash shows a soft delete (`deleted-at` set), one without a trash is `purged`.
 */
function examplePayload(kind: FactKind): { data: Json; purged?: true } {
  const example = kind.example as Json;
  if (kind.verb !== "deleted") return { data: kind.data.parse(example) };
  if (!("deleted-at" in example)) return { data: kind.data.parse(example), purged: true };
  return { data: kind.data.parse({ ...example, "deleted-at": "2030-05-01T09:00:00.000Z" }) };
}

/** A whole fact as a subscriber receives it, for the message's example. */
function exampleFact(kind: FactKind): Json {
  const { data, purged } = examplePayload(kind);
  return {
    specversion: "1.0",
    id: "3f1c2a8e-6b0d-4c59-9a57-2f0e8b7d4c11",
    source: kind.service,
    type: kind.type,
    subject: `/v1/${kind.collection}/${kind.example.id}`,
    time: "2030-05-01T09:00:00.000Z",
    datacontenttype: "application/json",
    actorid: "4",
    actoremail: "ada@example.com",
    ...(purged ? { purged } : {}),
    data,
  };
}

/** The message of one fact type: the envelope, its `type` and `source`, its typed `data`. */
function messagePayload(kind: FactKind): Json {
  return {
    allOf: [
      { $ref: "#/components/schemas/CloudEvent" },
      {
        type: "object",
        properties: {
          source: { const: kind.service },
          type: { const: kind.type },
          data: { $ref: `#/components/schemas/${dataSchemaName(kind)}` },
        },
        required: ["data"],
      },
    ],
  };
}

function message(kind: FactKind, name: string): Json {
  return {
    name,
    title: kind.type,
    summary: kind.description,
    // Structured mode: the whole message is the CloudEvent, sent with this media type.
    contentType: CLOUDEVENTS_JSON,
    headers: {
      type: "object",
      properties: {
        "content-type": { const: CLOUDEVENTS_JSON },
        "Nats-Msg-Id": { type: "string", description: "The fact id (JetStream de-duplication)." },
      },
      // Every fact is published with both: subscribers may rely on them.
      required: ["content-type", "Nats-Msg-Id"],
    },
    payload: messagePayload(kind),
    examples: [{
      name: `${name}Example`,
      headers: { "content-type": CLOUDEVENTS_JSON, "Nats-Msg-Id": exampleFact(kind).id },
      payload: exampleFact(kind),
    }],
  };
}

const description = [
  "Every change a service makes is published after its commit as a fact on NATS JetStream, in",
  "the stream `<PREFIX>_FACTS` (subjects `<prefix>.facts.>`, kept a year, de-duplicated on the",
  "fact id for ten minutes; `<PREFIX>` is the prefix upper-cased with every character but",
  "letters, digits, `_` and `-` made `_`: `oe.eu` gives `OE_EU_FACTS`). A fact is a CloudEvents",
  "1.0 event in structured JSON mode: `type`",
  "is `<service>.<resource type>.<verb>` (the subject without `<prefix>.facts.`), `source` the",
  "service, `subject` the resource's path (`/v1/events/5`), `data` the resource as the HTTP API",
  "shows it (dasherized attribute names, relationship ids as strings; never a column name or a",
  "secret), and the acting user is in the extensions `actorid` and `actoremail` (absent for",
  "system changes). Subscribe with a durable consumer and be idempotent on `id`: a fact can",
  "arrive twice. Payloads only grow by optional fields; anything else is a new type ending in",
  "`.v2`. Generated by `deno task asyncapi` from shared/fact_catalog.ts: do not edit by hand.",
].join(" ");

/**
 * Adds the payload schema of `kind` under its name, shared by the types that have the same one. A
 * different payload under a name already taken (a `.v2` schema copied with its v1 title) would
 * document the other's payload for this type's messages: refused.
 */
function addDataSchema(schemas: Json, kind: FactKind): void {
  const name = dataSchemaName(kind);
  const schema = jsonSchemaOf(kind.data);
  if (name in schemas && !isDeepStrictEqual(schemas[name], schema)) {
    throw new Error(
      `Cannot document ${kind.type}: its payload schema is named ${name} like a different one ` +
        "(give it its own title)",
    );
  }
  schemas[name] = schema;
}

/** The whole AsyncAPI document as plain data (of every registered fact, unless `kinds`). */
export function asyncApiDocument(kinds: FactKind[] = factKinds()): Json {
  const channels: Json = {};
  const operations: Json = {};
  const messages: Json = {};
  const schemas: Json = { CloudEvent: envelopeJsonSchema() };
  for (const kind of kinds) {
    const name = pascal(kind.type);
    addDataSchema(schemas, kind);
    if (name in messages) throw new Error(`Cannot document ${kind.type}: ${name} names another`);
    messages[name] = message(kind, name);
    channels[name] = {
      address: `{prefix}.${kind.subject}`,
      title: kind.subject,
      description: kind.description,
      messages: { [name]: { $ref: `#/components/messages/${name}` } },
      parameters: { prefix: { $ref: "#/components/parameters/prefix" } },
    };
    operations[`receive${name}`] = {
      action: "receive",
      channel: { $ref: `#/channels/${name}` },
      summary: `Subscribe to ${kind.type}.`,
      messages: [{ $ref: `#/channels/${name}/messages/${name}` }],
    };
  }
  return {
    asyncapi: "3.0.0",
    info: { title: "Open Event facts", version: "2.0.0", description },
    defaultContentType: CLOUDEVENTS_JSON,
    servers: {
      nats: {
        host: "127.0.0.1:4222",
        protocol: "nats",
        description: "NATS with JetStream (NATS_URL).",
      },
    },
    channels,
    operations,
    components: {
      schemas,
      messages,
      parameters: {
        prefix: {
          description: "The bus prefix of the system (BUS_PREFIX, default oe).",
          default: "oe",
        },
      },
    },
  };
}

const plainKey = /^[A-Za-z_$][\w$-]*$/;
const plainValue = /^[A-Za-z][\w.-]*$/;
const yamlWords = /^(true|false|null|yes|no|on|off|y|n|~)$/i;

function scalar(value: unknown): string {
  if (typeof value === "string") {
    return plainValue.test(value) && !yamlWords.test(value) ? value : JSON.stringify(value);
  }
  return JSON.stringify(value);
}

/** Block YAML for JSON-like data; strings that need it are JSON-quoted (valid YAML too). */
function toYaml(value: unknown, indent = ""): string {
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return value.map((item) => {
      const inner = toYaml(item, `${indent}  `);
      return `\n${indent}- ${
        typeof item === "object" && item !== null ? inner.trimStart() : inner
      }`;
    }).join("");
  }
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value);
    if (!entries.length) return "{}";
    return entries.map(([key, item]) => {
      const name = plainKey.test(key) && !yamlWords.test(key) ? key : JSON.stringify(key);
      const inner = toYaml(item, `${indent}  `);
      const nested = typeof item === "object" && item !== null && inner !== "[]" && inner !== "{}";
      return nested && !Array.isArray(item)
        ? `\n${indent}${name}:${inner}`
        : `\n${indent}${name}:${Array.isArray(item) && item.length ? inner : ` ${inner}`}`;
    }).join("");
  }
  return scalar(value);
}

/** The file's text: a header, then the document. */
export function renderAsyncApi(): string {
  return `# Generated by \`deno task asyncapi\` (scripts/asyncapi.ts). Do not edit by hand.${
    toYaml(asyncApiDocument())
  }\n`;
}

if (import.meta.main) {
  const text = renderAsyncApi();
  if (Deno.args.includes("--check")) {
    const current = await Deno.readTextFile(OUTPUT).catch(() => "");
    if (current !== text) {
      console.error("blueprint/asyncapi.yaml is out of date: run `deno task asyncapi`");
      Deno.exit(1);
    }
  } else {
    await Deno.writeTextFile(OUTPUT, text);
    console.log(`Wrote ${OUTPUT.pathname}`);
  }
}
