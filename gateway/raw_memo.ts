/**
 * What the gateway's short ways (gateway/hit_path.ts, gateway/signed_path.ts) remember of the raw
 * requests the full path answered: keyed by method, target and `Accept` as the request came,
 * bounded in count and in characters (past either the memory starts over, and each request takes
 * the full path once again).
 *
 * @example
 * ```ts
 * import { memoKey, RawMemo } from "./raw_memo.ts";
 * const memo = new RawMemo<string>(2, 1_000);
 * memo.remember(memoKey("GET", "/v1/events", null), "events", 40);
 * console.log(memo.get(memoKey("GET", "/v1/events", null))); // "events"
 * ```
 */
import { isAuthority, urlAuthority } from "./middleware/host.ts";

/**
 * The memory's key. `target` is the path and query as the request sent them (`Request.url` from
 * `Deno.serve` keeps them so, and the relay reads them off the wire), so a target written
 * otherwise never matches one. A space cannot occur in a target: the parts cannot run together.
 */
export function memoKey(method: string, target: string, accept: string | null): string {
  return `${method} ${target} ${accept === null ? "" : `=${accept}`}`;
}

/**
 * The target (path and query) of a request a short way may answer: no cookie, no body, and no
 * Host nor URL authority (an absolute-form target's) that could hold a `/` or `?`
 * (middleware/host.ts refuses those); undefined otherwise.
 */
export function plainTarget(raw: Request): string | undefined {
  const headers = raw.headers;
  if (
    headers.has("cookie") || headers.has("content-length") || headers.has("transfer-encoding")
  ) return undefined;
  const host = headers.get("host");
  if (host !== null && !isAuthority(host)) return undefined;
  const url = raw.url;
  const authority = urlAuthority(url);
  if (authority === undefined) return undefined;
  return url.slice(url.indexOf("//") + 2 + authority.length);
}

/** Values by raw request key, at most `limit` of them and `maxChars` characters. */
export class RawMemo<V> {
  readonly #memo = new Map<string, V>();
  #chars = 0;

  constructor(readonly limit: number, readonly maxChars: number) {}

  /** Raw requests remembered now. */
  get size(): number {
    return this.#memo.size;
  }

  get(key: string): V | undefined {
    return this.#memo.get(key);
  }

  /** Remembers `value` under `key`, counted as `chars` characters; a known key keeps its value. */
  remember(key: string, value: V, chars: number): void {
    if (this.#memo.has(key)) return;
    if (this.#memo.size >= this.limit || this.#chars + chars > this.maxChars) {
      this.#memo.clear();
      this.#chars = 0;
    }
    this.#memo.set(key, value);
    this.#chars += chars;
  }
}
