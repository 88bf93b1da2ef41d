/**
 * Reading a JSON request body with a size limit: the declared Content-Length is checked before
 * reading, and the bytes actually read are counted when no length is declared.
 */
import { BadRequestError, PayloadTooLargeError } from "@shared/errors.ts";
import type { ErrorSource } from "@shared/errors.ts";

const decoder = new TextDecoder();

/** A malformed body points at the whole document (`""`), which ApiError's options cannot say. */
class MalformedBodyError extends BadRequestError {
  override readonly source: ErrorSource = { pointer: "" };
}

function tooLarge(limitBytes: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`Cannot read the body: it is larger than ${limitBytes} bytes`);
}

/**
 * True when the request carries a body (used for DELETE, where one is optional). Decided by the
 * framing headers: a server may hand over an empty stream for a request that has no body.
 */
export function hasBody(request: Request): boolean {
  const length = request.headers.get("Content-Length");
  if (length !== null) return length.trim() !== "0";
  return request.headers.has("Transfer-Encoding");
}

async function readLimited(stream: ReadableStream<Uint8Array>, limitBytes: number) {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.byteLength;
    if (total > limitBytes) throw tooLarge(limitBytes);
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

async function readBytes(request: Request, limitBytes: number): Promise<Uint8Array> {
  if (request.body === null) return new Uint8Array();
  const declared = request.headers.get("Content-Length");
  if (declared !== null && /^\d+$/.test(declared)) {
    if (Number(declared) > limitBytes) throw tooLarge(limitBytes);
    // The HTTP server frames the body by this length, so it cannot grow past it.
    return new Uint8Array(await request.arrayBuffer());
  }
  return await readLimited(request.body, limitBytes);
}

/** The request body as text, within the size limit (for routes that verify a signature). */
export async function readTextBody(request: Request, limitBytes: number): Promise<string> {
  return decoder.decode(await readBytes(request, limitBytes));
}

/**
 * The request body parsed as a JSON object: 413 above `limitBytes`, 400 when it is not JSON or
 * not an object.
 *
 * @example
 * ```ts
 * import { readJsonBody } from "./body.ts";
 * const request = new Request("http://x/", { method: "POST", body: '{"data":{}}' });
 * console.log(await readJsonBody(request, 1_000)); // { data: {} }
 * ```
 */
export async function readJsonBody(
  request: Request,
  limitBytes: number,
): Promise<Record<string, unknown>> {
  const bytes = await readBytes(request, limitBytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(bytes));
  } catch (cause) {
    throw new MalformedBodyError("Cannot read the body: it is not valid JSON", { cause });
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new MalformedBodyError("Cannot read the body: it must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}
