/**
 * The `+ Schema` of every blueprint response, generated from its example body and one
 * description per resource type: JSON Schema draft-04 (what Dredd's gavel validates),
 * stating types, formats, nullability and the members the example shows as required, never the
 * example's values. Attribute types come from shared/contracts/attributes.ts. Attributes stay open (no `additionalProperties: false`): a server may add
 * attributes without breaking a client.
 */

import { ATTRIBUTES, type Schema } from "@shared/contracts/attributes.ts";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type { Schema };

const string = { type: "string" };
const number = { type: "number" };
const dateTime = { type: "string", format: "date-time" };

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return !!value && typeof value === "object" && !Array.isArray(value);
}

/** A plain value's type, for members we have no description of (meta, price previews). */
function valueSchema(value: Json): Schema {
  if (value === null) return {};
  if (Array.isArray(value)) {
    return value.length ? { type: "array", items: valueSchema(value[0]) } : { type: "array" };
  }
  if (typeof value === "object") return objectSchema(value, valueSchema);
  if (typeof value === "number") return number;
  if (typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(value)) return dateTime;
  return { type: typeof value };
}

function objectSchema(value: { [key: string]: Json }, member: (v: Json, k: string) => Schema) {
  const properties: Record<string, Schema> = {};
  for (const [key, item] of Object.entries(value)) properties[key] = member(item, key);
  const keys = Object.keys(value);
  return { type: "object", ...(keys.length ? { required: keys } : {}), properties };
}

const links = { type: "object", additionalProperties: { type: ["string", "null"] } };

function identifier(value: { [key: string]: Json }): Schema {
  return {
    type: "object",
    required: ["type", "id"],
    properties: { type: { enum: [value.type] }, id: string },
  };
}

function linkage(data: Json): Schema {
  if (Array.isArray(data)) {
    const types = [...new Set(data.filter(isObject).map((item) => item.type))];
    const items = types.length ? { properties: { type: { enum: types }, id: string } } : {};
    return { type: "array", items: { type: "object", required: ["type", "id"], ...items } };
  }
  if (isObject(data)) {
    const schema = identifier(data);
    return { ...schema, type: ["object", "null"] };
  }
  return { type: ["object", "null"], required: ["type", "id"] };
}

function attributesSchema(type: string, attributes: { [key: string]: Json }): Schema {
  const known = ATTRIBUTES[type];
  if (!known) throw new Error(`Cannot write a schema: no attributes are described for ${type}`);
  for (const name of Object.keys(attributes)) {
    if (!known[name]) throw new Error(`Cannot write a schema: ${type} has no attribute ${name}`);
  }
  const required = Object.keys(attributes);
  return { type: "object", ...(required.length ? { required } : {}), properties: known };
}

function relationshipsSchema(relationships: { [key: string]: Json }): Schema {
  const properties: Record<string, Schema> = {};
  for (const [name, relationship] of Object.entries(relationships)) {
    const member: Schema = { type: "object", properties: { links } };
    if (isObject(relationship) && "data" in relationship) {
      member.required = ["data"];
      member.properties = { links, data: linkage(relationship.data) };
    }
    properties[name] = member;
  }
  return { type: "object", properties };
}

/** A resource object (or, without attributes and relationships, a resource identifier). */
function resourceSchema(value: { [key: string]: Json }): Schema {
  const properties: Record<string, Schema> = { type: { enum: [value.type] }, id: string };
  const required = ["type", "id"];
  if (isObject(value.attributes)) {
    properties.attributes = attributesSchema(String(value.type), value.attributes);
    required.push("attributes");
  }
  if (isObject(value.relationships)) {
    properties.relationships = relationshipsSchema(value.relationships);
    required.push("relationships");
  }
  if (isObject(value.links)) properties.links = links;
  if (isObject(value.meta)) properties.meta = valueSchema(value.meta);
  return { type: "object", required, properties };
}

function resourcesSchema(items: Json[]): Schema {
  const byType = new Map<string, { [key: string]: Json }>();
  for (const item of items) if (isObject(item)) byType.set(String(item.type), item);
  const schemas = [...byType.values()].map(resourceSchema);
  if (!schemas.length) return { type: "array", items: { type: "object" } };
  return { type: "array", items: schemas.length === 1 ? schemas[0] : { anyOf: schemas } };
}

function primaryData(data: Json): Schema {
  if (Array.isArray(data)) return resourcesSchema(data);
  if (isObject(data) && typeof data.type === "string") return resourceSchema(data);
  if (data === null) return { type: ["object", "null"] };
  return valueSchema(data);
}

const errorObject = {
  type: "object",
  required: ["status", "title"],
  properties: {
    status: string,
    code: string,
    title: string,
    detail: string,
    source: {
      type: "object",
      properties: { pointer: string, parameter: string, header: string },
    },
  },
};

function topLevelMember(value: Json, key: string): Schema {
  switch (key) {
    case "data":
      return primaryData(value);
    case "included":
      return Array.isArray(value) ? resourcesSchema(value) : valueSchema(value);
    case "errors":
      return { type: "array", minItems: 1, items: errorObject };
    case "links":
      return links;
    case "jsonapi":
      return { type: "object", properties: { version: string } };
    case "meta":
      return isObject(value) ? objectSchema(value, valueSchema) : valueSchema(value);
    default:
      return valueSchema(value);
  }
}

/** The schema of a response whose example body is `body` (parsed JSON). */
export function schemaForBody(body: Json): Schema {
  const schema = isObject(body) ? objectSchema(body, topLevelMember) : valueSchema(body);
  return { $schema: "http://json-schema.org/draft-04/schema#", ...schema };
}

/** The schema as blueprint lines, or undefined when the body is not JSON. */
export function schemaLines(body: string[]): string[] | undefined {
  let parsed: Json;
  try {
    parsed = JSON.parse(body.join("\n"));
  } catch {
    return undefined;
  }
  return compactJson(schemaForBody(parsed)).split("\n");
}

/** JSON with every value that fits on one line (100 columns with its indent) on one line. */
export function compactJson(value: unknown, indent = 0, width = 100, lead = 0): string {
  const flat = JSON.stringify(value);
  if (flat.length + indent + lead <= width || value === null || typeof value !== "object") {
    return flat;
  }
  const pad = " ".repeat(indent + 2);
  const close = " ".repeat(indent);
  if (Array.isArray(value)) {
    const items = value.map((item) => pad + compactJson(item, indent + 2, width));
    return `[\n${items.join(",\n")}\n${close}]`;
  }
  const members = Object.entries(value as Record<string, unknown>).map(([key, item]) =>
    `${pad}${JSON.stringify(key)}: ${compactJson(item, indent + 2, width, key.length + 4)}`
  );
  return `{\n${members.join(",\n")}\n${close}}`;
}
