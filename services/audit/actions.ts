/**
 * Turns a fact into the activity's `action`: a short sentence in the original's style
 * ("Event 5 updated", "Discount code SUMMER created for event 3"). Sentences are keyed by fact
 * type and read its public payload (typed by the registry, shared/fact_catalog.ts); types
 * nobody described yet still get a readable one from their names.
 *
 * Where the original had a template for the change (`ACTIVITIES` in its app/models/activity.py:
 * users, events, event roles), the sentence is that template, filled in as it filled it: a user
 * as `"email" (id)`, a role by its title, ids as they are. Its v1.x API never wrote them (only
 * mails and notifications were logged; the templates served its earlier, server-rendered app),
 * but they are the wording its docs and admins know. Other changes read in the same style.
 *
 * A user a fact names by id only (a role's user), or an address it no longer carries (the one an
 * email change left), comes from what audit learnt of users from their own facts (`KnownUsers`,
 * user_emails.ts); unknown to it, the sentence names them by id.
 */
import type { FactType } from "@shared/fact_catalog.ts";
import { type Fact, factActor, factChanged, factResource } from "@shared/facts.ts";

const MAX_LENGTH = 500;

/** What audit knows of users beyond a fact: their address as their own facts last said it. */
export interface KnownUsers {
  /**
   * The user's latest known address; with `at` (a fact's time), only one known from a fact no
   * later than that. Undefined when audit has not seen the user (or forgot them: purged).
   */
  email(id: string, at?: string): string | undefined;
}

/** Knows nobody: every user by id. */
const NOBODY: KnownUsers = { email: () => undefined };

/** The event a fact names in its public payload (`event`), if any. */
function eventOf(fact: Fact): string | null {
  return "event" in fact.data ? fact.data.event : null;
}

/** " for event 3", or nothing when the fact names no event. */
function forEvent(fact: Fact): string {
  const event = eventOf(fact);
  return event ? ` for event ${event}` : "";
}

/** "stripe-authorization" -> "Stripe authorization". */
function label(type: string): string {
  const words = type.replaceAll(/[-_.]+/g, " ").trim();
  return words ? words[0].toUpperCase() + words.slice(1) : "Resource";
}

/** "logged-in" -> "logged in". */
function words(verb: string): string {
  return verb.replaceAll(/[-_.]+/g, " ").trim() || "changed";
}

/** "<Type> <id> <verb>[ for event <id>]", from the fact type and the payload. */
function generic(fact: Fact): string {
  const { type, id } = factResource(fact);
  const verb = fact.type.split(".")[2] ?? "";
  return `${label(type)} ${id} ${words(verb)}${forEvent(fact)}`;
}

type CodeFact = Fact<`discounts.discount-code.${string}` & FactType>;
type RedemptionFact = Fact<`discounts.discount-code.${"reserved" | "confirmed" | "released"}`>;
type GrantFact = Fact<`catalog.users-events-role.${string}` & FactType>;
type SubTopicFact = Fact<`catalog.event-sub-topic.${string}` & FactType>;

function code(fact: CodeFact): string {
  return fact.data.code || fact.data.id;
}

/** Events named at most, one by one, in a code's sentence. */
const EVENTS_NAMED = 5;

/**
 * " for event 3" for a ticket code; " for events 3, 4" for an event code, which applies to the
 * events it lists (`events`; its `event` is null: its sentences named none, found by a review);
 * ": applies to no event now" for an event code whose last event was taken away (a deleted event
 * detaches it: the sentence named nothing, as if nothing had changed, found by a review).
 */
function forCodeEvents(fact: CodeFact): string {
  const events = "events" in fact.data && Array.isArray(fact.data.events) ? fact.data.events : [];
  const detached = "events" in fact.data && !events.length && factChanged(fact).includes("events");
  if (!eventOf(fact) && detached) return ": applies to no event now";
  if (eventOf(fact) || !events.length) return forEvent(fact);
  const named = events.slice(0, EVENTS_NAMED).join(", ");
  const more = events.length > EVENTS_NAMED ? ` and ${events.length - EVENTS_NAMED} more` : "";
  return ` for event${events.length === 1 ? "" : "s"} ${named}${more}`;
}

type UserFact = Fact<`catalog.user.${string}` & FactType>;

/** A user as the original's sentences name one: `"ada@example.com" (4)`. */
function user(fact: UserFact): string {
  return `"${fact.data.email}" (${fact.data.id})`;
}

/**
 * The original's `update_user_email` sentence ("User 4 email changed from a@x to b@x", the
 * addresses as it filled them in) when the update changed the address: as its `changed` says, or,
 * a fact that does not say, when the address audit knew before differs. The old address is one
 * audit knew from before the fact; without it, the sentence names the new one only. Null when
 * the address did not change.
 */
function emailChange(fact: Fact<"catalog.user.updated">, users: KnownUsers): string | null {
  const { id, email } = fact.data;
  const before = users.email(id, fact.time);
  const moved = fact.changed === undefined
    ? before !== undefined && before !== email
    : factChanged(fact).includes("email");
  if (!moved) return null;
  return before !== undefined && before !== email
    ? `User ${id} email changed from ${before} to ${email}`
    : `User ${id} email changed to ${email}`;
}

/**
 * An update of a user: the original's `update_user_email` sentence when their address changed,
 * its `system_admin` sentence when their admin right changed ("Assigned"/"Unassigned", its
 * words), the same form for the super admin right it did not have (both, one after the other, when
 * one update changed both), its profile sentence otherwise.
 */
function userUpdated(fact: Fact<"catalog.user.updated">, users: KnownUsers): string {
  const changed = factChanged(fact);
  const right = (assigned: boolean, what: string) =>
    `User ${user(fact)} ${assigned ? "Assigned" : "Unassigned"} ${what}`;
  const said = [emailChange(fact, users)];
  // Each right on its own: an `else` here once dropped a super admin right given (or taken) in the
  // same PATCH as the admin right, and the strongest grant was in no activity.
  if (changed.includes("is-admin")) said.push(right(fact.data["is-admin"], "system admin"));
  if (changed.includes("is-super-admin")) {
    said.push(right(fact.data["is-super-admin"], "super admin"));
  }
  const sentences = said.filter((sentence) => sentence !== null);
  return sentences.length ? sentences.join("; ") : `Profile of user ${user(fact)} updated`;
}

/** An update of an event: the original's `publish_event` sentence when its state changed. */
function eventUpdated(fact: Fact<"catalog.event.updated">): string {
  if (!factChanged(fact).includes("state")) return `Event ${fact.data.id} updated`;
  return `Event ${fact.data.id} ${fact.data.state === "published" ? "published" : "un-published"}`;
}

/** The roles' titles (`title-name` of `GET /v1/roles`), as the original's sentences name them. */
const ROLE_TITLES: Record<GrantFact["data"]["role"], string> = {
  owner: "Owner",
  organizer: "Organizer",
  coorganizer: "Co-organizer",
};

/**
 * A grant's sentence from its quoted role title, its user and its event. The grant's fact names
 * the user by id only: `"email" (id)` as the original showed them when audit knows the address
 * they had then (`users`, as of the fact's time: a batch handled after a later one must not name
 * an address the user took since), their id otherwise.
 */
function grant(
  fact: GrantFact,
  users: KnownUsers,
  sentence: (role: string, user: string, event: string) => string,
) {
  const title = ROLE_TITLES[fact.data.role] ?? fact.data.role;
  const id = fact.data.user;
  const email = users.email(id, fact.time);
  return sentence(`"${title}"`, email === undefined ? id : `"${email}" (${id})`, fact.data.event);
}

function uses(fact: RedemptionFact): string {
  const n = fact.data.reservation.quantity;
  return ` (${n} ${n === 1 ? "use" : "uses"})`;
}

function subTopic(fact: SubTopicFact, verb: string): string {
  const topic = fact.data["event-topic"];
  return `Event sub-topic ${fact.data.id} ${verb}${topic ? ` for event topic ${topic}` : ""}`;
}

/** Sentences by fact type, each reading its type's payload (and what audit knows of users). */
const sentences: { [K in FactType]?: (fact: Fact<K>, users: KnownUsers) => string } = {
  "catalog.user.created": (f) => `User ${user(f)} created`,
  "catalog.user.updated": userUpdated,
  "catalog.user.deleted": (f) => `User ${f.data.id} deleted`,
  // The original's sentence goes on "from IP .. using browser .. on .. platform": nothing we
  // collect, nor should a fact that every subscriber reads for a year carry it.
  "catalog.user.logged-in": (f) => `User ${user(f)} login`,
  "catalog.users-events-role.created": (f, users) =>
    grant(
      f,
      users,
      (role, user, event) => `Role ${role} created for user ${user} in event ${event}`,
    ),
  "catalog.users-events-role.updated": (f, users) =>
    grant(
      f,
      users,
      (role, user, event) => `Role updated to ${role} for user ${user} in event ${event}`,
    ),
  "catalog.users-events-role.deleted": (f, users) =>
    grant(
      f,
      users,
      (role, user, event) => `User ${user} removed from role ${role} in event ${event}`,
    ),
  "catalog.event.updated": eventUpdated,
  "catalog.event-sub-topic.created": (f) => subTopic(f, "created"),
  "catalog.event-sub-topic.updated": (f) => subTopic(f, "updated"),
  "catalog.event-sub-topic.deleted": (f) => subTopic(f, "deleted"),
  "payments.stripe-authorization.created": (f) => `Stripe authorization linked${forEvent(f)}`,
  "payments.stripe-authorization.updated": (f) => `Stripe authorization re-linked${forEvent(f)}`,
  "payments.stripe-authorization.deleted": (f) => `Stripe authorization removed${forEvent(f)}`,
  "discounts.discount-code.created": (f) => `Discount code ${code(f)} created${forCodeEvents(f)}`,
  "discounts.discount-code.updated": (f) => `Discount code ${code(f)} updated${forCodeEvents(f)}`,
  "discounts.discount-code.deleted": (f) => `Discount code ${code(f)} deleted${forCodeEvents(f)}`,
  "discounts.discount-code.reserved": (f) =>
    `Discount code ${code(f)} reserved${uses(f)}${forCodeEvents(f)}`,
  "discounts.discount-code.confirmed": (f) =>
    `Discount code ${code(f)} confirmed${uses(f)}${forCodeEvents(f)}`,
  "discounts.discount-code.released": (f) =>
    `Discount code ${code(f)} released${uses(f)}${forCodeEvents(f)}`,
};

/** Drops control characters (Postgres text refuses NUL) and bounds the length. */
export function clean(text: string, max = MAX_LENGTH): string {
  // deno-lint-ignore no-control-regex
  const printable = text.replaceAll(/[\u0000-\u001f\u007f]/g, " ");
  return printable.length > max ? `${printable.slice(0, max - 1)}…` : printable;
}

/**
 * The readable sentence for a fact; `users` says what audit knows of users the fact names by id
 * only (by default nobody: they are named by id).
 *
 * @example
 * ```ts ignore
 * describeFact(exampleFact("catalog.event.updated", { id: "5" }));
 * // "Event 5 updated"
 * ```
 */
export function describeFact(fact: Fact, users: KnownUsers = NOBODY): string {
  const sentence = sentences[fact.type] as
    | ((fact: Fact, users: KnownUsers) => string)
    | undefined;
  const text = sentence?.(fact, users) ?? generic(fact);
  // A purge reads apart from the soft delete before it ("Event 2 deleted", then "Event 2 deleted
  // permanently"); a revoked role or a removed Stripe authorization, which have no trash, read
  // as they did.
  if (fact.purged) return clean(text.replace(" deleted", " deleted permanently"));
  // Taken out of the trash (`deleted-at` set back to null): "Event topic 2 restored", where it
  // read as any other update and an admin could not tell the deletion was undone.
  return clean(restored(fact) ? text.replace(" updated", " restored") : text);
}

/** An update that set `deleted-at` back to null. */
function restored(fact: Fact): boolean {
  if (!fact.type.endsWith(".updated") || !factChanged(fact).includes("deleted-at")) return false;
  return (fact.data as { "deleted-at"?: unknown })["deleted-at"] === null;
}

/**
 * "email (id)" of the acting user, or "system" for changes nobody made by hand. An actor id that
 * comes without an address (the envelope allows it; our producers send both) takes the address
 * `users` knows at the fact's time, else reads as sentences name an unknown user ("user 5"),
 * where it read " (5)".
 */
export function describeActor(fact: Fact, users: KnownUsers = NOBODY): string {
  const actor = factActor(fact);
  if (!actor) return "system";
  const email = actor.email || users.email(actor.id, fact.time);
  return clean(email ? `${email} (${actor.id})` : `user ${actor.id}`);
}
