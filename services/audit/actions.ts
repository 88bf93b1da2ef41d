/**
 * Turns a fact into the activity's `action`: a short sentence in the original's style
 * ("Event 5 updated", "Discount code SUMMER created for event 3"). Sentences are keyed by
 * `type.verb`; facts nobody described yet still get a readable one from their names.
 */
import type { Fact } from "@shared/facts.ts";

type Sentence = (fact: Fact) => string | undefined;

const MAX_LENGTH = 500;

/** A data value as text, or undefined when absent (sentences then fall back). */
function field(fact: Fact, key: string): string | undefined {
  const value = fact.data?.[key];
  if (typeof value === "string" && value !== "") return value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  return undefined;
}

/** " for event 3", or nothing when the fact names no event. */
function forEvent(fact: Fact): string {
  const event = field(fact, "event_id");
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

function generic(fact: Fact): string {
  return `${label(fact.type)} ${fact.resource.id} ${words(fact.verb)}${forEvent(fact)}`;
}

function code(fact: Fact): string {
  return field(fact, "code") ?? fact.resource.id;
}

function grant(fact: Fact, sentence: (role: string, user: string, event: string) => string) {
  const [role, user, event] = ["role_name", "user_id", "event_id"].map((k) => field(fact, k));
  return role && user && event ? sentence(role, user, event) : undefined;
}

function uses(fact: Fact): string {
  const n = field(fact, "quantity");
  return n ? ` (${n} ${n === "1" ? "use" : "uses"})` : "";
}

const sentences: Record<string, Sentence> = {
  "user.created": (f) => `User ${f.resource.id} created`,
  "user.updated": (f) => `User ${f.resource.id} updated`,
  "user.deleted": (f) => `User ${f.resource.id} deleted`,
  "user.logged-in": (f) => `User ${f.resource.id} logged in`,
  "users-events-role.created": (f) =>
    grant(f, (role, user, event) => `Role ${role} granted to user ${user} for event ${event}`),
  "users-events-role.updated": (f) =>
    grant(f, (role, user, event) => `Role of user ${user} for event ${event} changed to ${role}`),
  "users-events-role.deleted": (f) =>
    grant(f, (role, user, event) => `Role ${role} revoked from user ${user} for event ${event}`),
  "event-sub-topic.created": (f) => subTopic(f, "created"),
  "event-sub-topic.updated": (f) => subTopic(f, "updated"),
  "event-sub-topic.deleted": (f) => subTopic(f, "deleted"),
  "stripe-authorization.created": (f) => `Stripe authorization linked${forEvent(f)}`,
  "stripe-authorization.updated": (f) => `Stripe authorization re-linked${forEvent(f)}`,
  "stripe-authorization.deleted": (f) => `Stripe authorization removed${forEvent(f)}`,
  "discount-code.created": (f) => `Discount code ${code(f)} created${forEvent(f)}`,
  "discount-code.updated": (f) => `Discount code ${code(f)} updated${forEvent(f)}`,
  "discount-code.deleted": (f) => `Discount code ${code(f)} deleted${forEvent(f)}`,
  "discount-code.reserved": (f) => `Discount code ${code(f)} reserved${uses(f)}${forEvent(f)}`,
  "discount-code.confirmed": (f) => `Discount code ${code(f)} confirmed${uses(f)}${forEvent(f)}`,
  "discount-code.released": (f) => `Discount code ${code(f)} released${uses(f)}${forEvent(f)}`,
};

function subTopic(fact: Fact, verb: string): string {
  const topic = field(fact, "event_topic_id");
  return `Event sub-topic ${fact.resource.id} ${verb}${topic ? ` for event topic ${topic}` : ""}`;
}

/** Drops control characters (Postgres text refuses NUL) and bounds the length. */
export function clean(text: string, max = MAX_LENGTH): string {
  // deno-lint-ignore no-control-regex
  const printable = text.replaceAll(/[\u0000-\u001f\u007f]/g, " ");
  return printable.length > max ? `${printable.slice(0, max - 1)}…` : printable;
}

/**
 * The readable sentence for a fact.
 *
 * @example
 * ```ts ignore
 * describeFact({ ...fact, type: "event", verb: "updated", resource: { type: "event", id: "5" } });
 * // "Event 5 updated"
 * ```
 */
export function describeFact(fact: Fact): string {
  const sentence = sentences[`${fact.type}.${fact.verb}`];
  return clean(sentence?.(fact) ?? generic(fact));
}

/** "email (id)" of the acting user, or "system" for changes nobody made by hand. */
export function describeActor(fact: Fact): string {
  return fact.actor ? clean(`${fact.actor.email} (${fact.actor.id})`) : "system";
}
