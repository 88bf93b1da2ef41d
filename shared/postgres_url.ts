/**
 * Postgres connection URLs as postgres.js and libpq read them, several hosts included
 * (`postgres://user@db1:5432,db2:5432/open_event?target_session_attrs=primary`): the way to follow
 * a failover without a virtual IP. WHATWG's `URL` refuses such a host list, so the parts this
 * project reads or changes (the database's name, the database itself) are taken apart here by the
 * URL's grammar, never by `new URL`, and the rest (login, hosts, parameters) stays as written.
 *
 * @example
 * ```ts
 * import { databaseOf, withDatabase } from "@shared/postgres_url.ts";
 * databaseOf("postgres://u@a:5432,b:5432/shop?sslmode=require"); // "shop"
 * withDatabase("postgres://u@a:5432,b:5432/shop?sslmode=require", "postgres");
 * // "postgres://u@a:5432,b:5432/postgres?sslmode=require"
 * ```
 */

/** scheme://authority /path ?query #fragment */
const PARTS = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(\/[^?#]*)?(\?[^#]*)?(#.*)?$/i;

interface Parts {
  scheme: string;
  authority: string;
  path: string;
  query: string;
  fragment: string;
}

function partsOf(url: string): Parts {
  // As WHATWG's URL (and so postgres.js) reads one: spaces around it and tabs or line breaks in it
  // are dropped (a setting read from a file often ends in a newline).
  const match = PARTS.exec(url.trim().replace(/[\t\n\r]/g, ""));
  if (!match) throw new TypeError("Invalid URL: not scheme://host/database");
  const [, scheme, authority, path = "", query = "", fragment = ""] = match;
  return { scheme, authority, path, query, fragment };
}

/** The database a URL names ("postgres" when it names none, as this project always read it). */
export function databaseOf(url: string): string {
  return decodeURIComponent(partsOf(url).path.replace(/^\//, "")) || "postgres";
}

/** `url` naming database `name` instead: the same login, hosts and parameters. */
export function withDatabase(url: string, name: string): string {
  const { scheme, authority, query, fragment } = partsOf(url);
  return `${scheme}${authority}/${encodeURIComponent(name)}${query}${fragment}`;
}

/** Whether `url` is a postgres:// or postgresql:// URL (its scheme only). */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/**
 * The hosts a URL lists, as written (`host:port`, `[::1]:5432`), never its login: what a log line
 * may name. The login ends at the last `@`, so a password holding `,` or `:` stays out.
 */
export function hostsOf(url: string): string[] {
  const { authority } = partsOf(url);
  const hosts = authority.slice(authority.lastIndexOf("@") + 1).split(",").filter((h) => h !== "");
  // A port that is no number is a malformed URL, as WHATWG's URL says of one host.
  if (!hosts.every((host) => HOST.test(host))) throw new TypeError("Invalid URL: a host's port");
  return hosts;
}

/** `host`, `host:port` or `[v6]:port`, the port digits only. */
const HOST = /^(\[[^\]]*\]|[^:\[\]]*)(:\d*)?$/;

/** How many hosts a URL lists (`a:5432,b:5432` is two). */
export function hostCount(url: string): number {
  return hostsOf(url).length;
}

/** A `host:port` as written in a URL, apart (the port 5432 unless given). */
export function hostAndPort(written: string): { hostname: string; port: number } {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(written);
  return {
    hostname: (match?.[1] ?? written).replace(/^\[|\]$/g, ""),
    port: Number(match?.[2] ?? 5432),
  };
}

/** The value of query parameter `name` in `url`, if it has one. */
export function parameterOf(url: string, name: string): string | undefined {
  return new URLSearchParams(partsOf(url).query.slice(1)).get(name) ?? undefined;
}
