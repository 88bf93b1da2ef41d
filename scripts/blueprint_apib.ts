/**
 * Just enough of an API Blueprint reader and writer for our own blueprints (blueprint/*.apib):
 * the file is split into prose (kept verbatim) and actions (`### Name [METHOD ...]`), whose
 * requests and responses are parsed into sections (`+ Headers`, `+ Body`, `+ Schema`) so a
 * generator can rewrite them. It also names transactions exactly as Dredd does.
 *
 * @example
 * ```ts ignore
 * import { parseBlueprint, renderBlueprint } from "./blueprint_apib.ts";
 * const text = Deno.readTextFileSync("blueprint/audit.apib");
 * renderBlueprint(parseBlueprint(text)); // the same document, sections normalized
 * ```
 */

/** A `+ Headers` / `+ Body` / `+ Schema` section; `content` lines are without their indent. */
export interface Section {
  name: string;
  content: string[];
}

export interface Payload {
  kind: "Request" | "Response";
  /** The request's name (`+ Request <title> (type)`), "" when it has none. */
  title: string;
  /** The media type in parentheses, "" when there is none. */
  mediaType: string;
  /** A response's status. */
  status?: number;
  description: string[];
  sections: Section[];
}

export interface Action {
  group: string;
  resource: string;
  name: string;
  method: string;
  /** The path template (no query part): the action's own or its resource's. */
  path: string;
  heading: string;
  preamble: string[];
  payloads: Payload[];
}

export type Chunk = { prose: string[] } | { action: Action };

const PAYLOAD = /^\+ (Request|Response)(.*)$/;
const SECTION = /^ {4}\+ (Headers|Body|Schema)\s*$/;

function parseHeader(line: string): Omit<Payload, "description" | "sections"> {
  const [, kind, rest] = line.match(PAYLOAD)!;
  const media = rest.match(/\(([^)]*)\)\s*$/);
  const before = (media ? rest.slice(0, media.index) : rest).trim();
  if (kind === "Response") {
    return { kind, title: "", mediaType: media?.[1] ?? "", status: Number(before) };
  }
  return { kind: "Request", title: before, mediaType: media?.[1] ?? "" };
}

function trimBlank(lines: string[]): string[] {
  let start = 0;
  let end = lines.length;
  while (start < end && !lines[start].trim()) start++;
  while (end > start && !lines[end - 1].trim()) end--;
  return lines.slice(start, end);
}

function dedent(lines: string[], by: number, where: string): string[] {
  return trimBlank(lines).map((line) => {
    if (!line.trim()) return "";
    if (!line.startsWith(" ".repeat(by))) throw new Error(`Cannot read ${where}: "${line}"`);
    return line.slice(by);
  });
}

function parsePayload(lines: string[]): Payload {
  const head = parseHeader(lines[0]);
  const description: string[] = [];
  const sections: Section[] = [];
  let current: string[] | undefined;
  for (const line of lines.slice(1)) {
    const section = line.match(SECTION);
    if (section) {
      current = [];
      sections.push({ name: section[1], content: current });
    } else if (current) current.push(line);
    else description.push(line);
  }
  for (const section of sections) {
    section.content = dedent(section.content, 12, `${lines[0]} ${section.name}`);
  }
  // A payload without sections may hold its body directly, indented by 8.
  const prose = trimBlank(description);
  if (
    !sections.length && prose.length && prose.every((l) => !l.trim() || l.startsWith("        "))
  ) {
    return {
      ...head,
      description: [],
      sections: [{ name: "Body", content: dedent(prose, 8, "") }],
    };
  }
  return { ...head, description: dedent(prose, 4, lines[0]), sections };
}

function parseAction(
  heading: string,
  context: { group: string; resource: string; resourcePath: string },
  lines: string[],
): Action {
  const [, name, method, own] = heading.match(/^### (.+?) \[([A-Z]+)\s*([^\]]*)\]\s*$/)!;
  // The query part (`?a=1`, `{?a}`, `{&a}`) is not part of the path.
  const path = (own.trim() || context.resourcePath).split(/\?|\{[?&]/)[0];
  const preamble: string[] = [];
  const payloads: string[][] = [];
  for (const line of lines) {
    if (PAYLOAD.test(line)) payloads.push([line]);
    else if (payloads.length) payloads[payloads.length - 1].push(line);
    else preamble.push(line);
  }
  return {
    group: context.group,
    resource: context.resource,
    name,
    method,
    path,
    heading,
    preamble: trimBlank(preamble),
    payloads: payloads.map(parsePayload),
  };
}

/** Splits a blueprint into prose and actions. */
export function parseBlueprint(text: string): Chunk[] {
  const chunks: Chunk[] = [];
  let group = "";
  let resource = "";
  let resourcePath = "";
  let prose: string[] = [];
  let action: { heading: string; lines: string[] } | undefined;
  const close = () => {
    if (action) {
      chunks.push({
        action: parseAction(action.heading, { group, resource, resourcePath }, action.lines),
      });
    } else if (prose.length) chunks.push({ prose });
    action = undefined;
    prose = [];
  };
  for (const line of text.replace(/\n+$/, "").split("\n")) {
    if (line.startsWith("#")) {
      close();
      const groupMatch = line.match(/^# Group (.+)$/);
      if (groupMatch) group = groupMatch[1].trim();
      const resourceMatch = line.match(/^## (.+?) \[([^\]]*)\]\s*$/);
      if (resourceMatch) [, resource, resourcePath] = resourceMatch;
      if (/^### .+\[[A-Z]+[^\]]*\]\s*$/.test(line)) {
        action = { heading: line, lines: [] };
        continue;
      }
      prose.push(line);
    } else if (action) action.lines.push(line);
    else prose.push(line);
  }
  close();
  return chunks;
}

function renderPayload(payload: Payload): string[] {
  const named = payload.kind === "Request" ? payload.title : String(payload.status);
  const media = payload.mediaType ? ` (${payload.mediaType})` : "";
  const lines = [`+ ${payload.kind}${named ? ` ${named}` : ""}${media}`, ""];
  // A payload's description is part of its list item: indented by 4.
  if (payload.description.length) {
    lines.push(...payload.description.map((line) => line ? `    ${line}` : ""), "");
  }
  for (const section of payload.sections) {
    lines.push(`    + ${section.name}`, "");
    lines.push(...section.content.map((line) => line ? `            ${line}` : ""), "");
  }
  return lines;
}

/** Writes the chunks back; parse(render(x)) gives x again. */
export function renderBlueprint(chunks: Chunk[]): string {
  const lines: string[] = [];
  for (const chunk of chunks) {
    if ("prose" in chunk) {
      lines.push(...chunk.prose);
      continue;
    }
    const { action } = chunk;
    lines.push(action.heading, "");
    if (action.preamble.length) lines.push(...action.preamble, "");
    for (const payload of action.payloads) lines.push(...renderPayload(payload));
  }
  return trimBlank(lines).join("\n") + "\n";
}

/** The examples of an action as Dredd numbers them: a request after a response starts one. */
export function examplesOf(action: Action): Payload[][] {
  const examples: Payload[][] = [];
  let previous: Payload["kind"] = "Response";
  for (const payload of action.payloads) {
    if (!examples.length || (payload.kind === "Request" && previous === "Response")) {
      examples.push([]);
    }
    examples[examples.length - 1].push(payload);
    previous = payload.kind;
  }
  return examples;
}

/** The transaction name Dredd prints for example `index` (0-based) of `action`. */
export function transactionName(action: Action, index: number, count: number): string {
  const base = `${action.group} > ${action.resource} > ${action.name}`;
  return count > 1 ? `${base} > Example ${index + 1}` : base;
}

/**
 * Whether an action documents the route `method path` (a Hono path, `/v1/events/:id`): the same
 * method, and the action's path (with `{param}`s or example values) fills the route's segments.
 */
export function documentsRoute(action: Pick<Action, "method" | "path">, route: string): boolean {
  const [method, path] = route.split(" ");
  const want = path.split("/");
  const have = action.path.split("/");
  return action.method === method && want.length === have.length &&
    want.every((segment, i) => segment.startsWith(":") || segment === have[i]);
}

export function section(payload: Payload, name: string): Section | undefined {
  return payload.sections.find((s) => s.name === name);
}
