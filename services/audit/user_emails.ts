/**
 * Users' addresses as audit learns them from their own facts (created, updated, logged in,
 * deleted: each carries the user's email), kept in its schema (store/user_emails.ts). A role's fact
 * names its user by id only; with this its sentence names them as the others do (`"email" (id)`),
 * and an email change names the address it changed from, without facts carrying more private
 * data. A user none of whose facts audit has handled (facts older than this table, a grant handled
 * before its user's first fact) is unknown: sentences name them by id, as before.
 *
 * A batch is walked in order (`describe` each fact, then `learn` from it), so a user's fact counts
 * for the facts behind it in the same batch; what a batch learnt is saved with its activities.
 * Each address carries the time of its fact: an older fact, handled after a newer one (a
 * redelivery, another instance), changes nothing, and an email change is read against an address
 * known from before it only.
 */
import type { Fact } from "@shared/facts.ts";
import { parseFactType } from "@shared/fact_names.ts";
import { isId } from "@shared/schemas/ids.ts";
import type { Queryable } from "@shared/db.ts";
import type { KnownUsers } from "./actions.ts";
import { loadUserEmails, type UserEmailRow } from "./store/user_emails.ts";

/** What a fact says of a user's address (null: purged, forget it), or nothing. */
function addressIn(fact: Fact): UserEmailRow | undefined {
  const parsed = parseFactType(fact.type);
  if (parsed?.service !== "catalog" || parsed.resource !== "user") return undefined;
  const data = fact.data as { id: string; email?: unknown };
  // A user type this build does not know keeps only the id (shared/facts.ts `unknownFact`); an id
  // no user can have is never looked up (`usersNamedBy`), so it is not kept either.
  if (typeof data.email !== "string" || !isId(data.id)) return undefined;
  const gone = fact.purged === true && parsed.verb === "deleted";
  return { user_id: data.id, email: gone ? null : data.email, as_of: new Date(fact.time) };
}

/**
 * The users whose address a fact's activity may show: its user, a role's user, an actor sent
 * without an address. Only ids a user can have: a user fact of a type this build does not know
 * keeps any id, and one Postgres cannot take (a NUL) failed the lookup of its whole batch, parked
 * as poison after a 30 s stall.
 */
function usersNamedBy(fact: Fact): string[] {
  // An actor sent without an address is named by the one known (actions.ts `describeActor`).
  const actor = fact.actorid !== undefined && !fact.actoremail && isId(fact.actorid)
    ? [fact.actorid]
    : [];
  const parsed = parseFactType(fact.type);
  if (parsed?.service !== "catalog") return actor;
  const user = parsed.resource === "user"
    ? fact.data.id
    : parsed.resource === "users-events-role" && (fact.data as { user?: unknown }).user;
  return typeof user === "string" && isId(user) ? [user, ...actor] : actor;
}

/** The addresses a batch needs, as known before it, learning from its facts in order. */
export class UserEmails implements KnownUsers {
  #known = new Map<string, UserEmailRow>();
  #learnt = new Map<string, UserEmailRow>();

  /** What audit knows of the users `batch` names. */
  static async before(sql: Queryable, batch: Fact[]): Promise<UserEmails> {
    const ids = new Set<string>();
    for (const fact of batch) {
      for (const id of usersNamedBy(fact)) ids.add(id);
    }
    const book = new UserEmails();
    for (const row of await loadUserEmails(sql, [...ids])) book.#known.set(row.user_id, row);
    return book;
  }

  email(id: string, at?: string): string | undefined {
    const user = this.#known.get(id);
    if (!user || user.email === null) return undefined;
    if (at !== undefined && user.as_of.getTime() > Date.parse(at)) return undefined;
    return user.email;
  }

  /** Takes in the address a user's fact says, unless a newer one is known; returns it if so. */
  learn(fact: Fact): UserEmailRow | undefined {
    const said = addressIn(fact);
    if (!said) return undefined;
    const known = this.#known.get(said.user_id);
    if (known && known.as_of > said.as_of) return undefined;
    this.#known.set(said.user_id, said);
    this.#learnt.set(said.user_id, said);
    return said;
  }

  /** The newest address learnt per user, to save. */
  learnt(): UserEmailRow[] {
    return [...this.#learnt.values()];
  }
}
