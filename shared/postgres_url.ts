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
  const match = PARTS.exec(url);
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

/** How many hosts a URL lists (`a:5432,b:5432` is two). */
export function hostCount(url: string): number {
  const { authority } = partsOf(url);
  const hosts = authority.slice(authority.lastIndexOf("@") + 1);
  return hosts.split(",").filter((host) => host !== "").length;
}

/** The value of query parameter `name` in `url`, if it has one. */
export function parameterOf(url: string, name: string): string | undefined {
  return new URLSearchParams(partsOf(url).query.slice(1)).get(name) ?? undefined;
}
