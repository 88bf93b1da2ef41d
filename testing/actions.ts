/**
 * What tests do through the API before they check anything: sign up and log in, create events,
 * tickets and topics, grant roles. Each throws with the answer unless the API said yes, so an
 * arrange step that fails names its cause instead of failing an assertion further down.
 *
 * @example
 * ```ts ignore
 * const alice = await signUp(system.call);
 * const event = await createEvent(system.call, alice.token);
 * ```
 */
import { decode } from "hono/jwt";
import type { Sql } from "@shared/db.ts";
import type { Actor } from "@shared/schemas/http.ts";
import type { Call } from "./call.ts";
import type { JsonBody } from "./json.ts";

export interface TestUser {
  id: string;
  token: string;
  email: string;
  password: string;
}

export type EventRoleName = "owner" | "organizer" | "coorganizer";

/** An event's relationships to topic `topic` and, if given, its sub-topic `sub`. */
export function inTopic(topic: string, sub?: string): Record<string, unknown> {
  return {
    "event-topic": { data: { type: "event-topic", id: topic } },
    ...(sub && { "event-sub-topic": { data: { type: "event-sub-topic", id: sub } } }),
  };
}

export interface NewEventOptions {
  /** Attributes over the defaults (a draft tomorrow, two hours long). */
  attributes?: Record<string, unknown>;
  /** JSON:API relationships object, e.g. `{ "event-topic": { data: {...} } }`. */
  relationships?: Record<string, unknown>;
}

export interface CreatedEvent {
  id: string;
  identifier: string;
  /** The whole resource object as the API returned it. */
  resource: JsonBody;
}

export interface EventCast {
  event: CreatedEvent;
  owner: TestUser;
  organizer: TestUser;
  coorganizer: TestUser;
  /** Logged in, but without any role on the event. */
  stranger: TestUser;
  /** Grant ids by role name (the owner's grant is made by the server). */
  grants: Record<EventRoleName, string>;
}

export interface RoleGrant {
  userId: string;
  eventId: string;
  role: EventRoleName;
}

/** Makes names unique within a test process. */
let counter = 0;

/** POSTs `body` to `path` as `token`; the created resource, or an error naming `what`. */
async function create(
  call: Call,
  what: string,
  path: string,
  token: string | undefined,
  body: unknown,
) {
  const reply = await call("POST", path, { token, body });
  if (reply.status !== 201) throw new Error(`Cannot ${what}: ${reply.status} ${reply.text}`);
  return reply.body.data;
}

/**
 * The actor the gateway makes of `user`'s token (its id and token version), for a test that asks a
 * service on the bus directly: a new account's version is random (services/catalog/store/users.ts
 * `firstTokenVersion`), so an actor with the id alone is refused.
 */
export function actorOf(user: { token: string }): Actor {
  const { payload } = decode(user.token);
  return { id: String(payload.sub), tokenVersion: Number(payload.ver) };
}

/** Logs in through the API; returns the token. */
export async function logIn(call: Call, email: string, password: string): Promise<string> {
  const reply = await call("POST", "/v1/auth/login", {
    body: { email, password },
    headers: { "Content-Type": "application/json" },
  });
  if (reply.status !== 200) {
    throw new Error(`Cannot log in as ${email}: ${reply.status} ${reply.text}`);
  }
  return reply.body.access_token;
}

/** Signs a new user up through the API and logs them in. */
export async function signUp(call: Call, email?: string): Promise<TestUser> {
  const address = email ?? `user-${++counter}-${crypto.randomUUID().slice(0, 8)}@example.test`;
  const password = `pw-${crypto.randomUUID()}`;
  const body = { data: { type: "user", attributes: { email: address, password } } };
  const user = await create(call, `sign up ${address}`, "/v1/users", undefined, body);
  return { id: user.id, email: address, password, token: await logIn(call, address, password) };
}

/** Creates an event as `token`'s user (the owner): a draft tomorrow unless told otherwise. */
export async function createEvent(
  call: Call,
  token: string,
  options: NewEventOptions = {},
): Promise<CreatedEvent> {
  const starts = new Date(Date.now() + 24 * 3600_000);
  const ends = new Date(starts.getTime() + 2 * 3600_000);
  const data: Record<string, unknown> = {
    type: "event",
    attributes: {
      name: `Event ${++counter}`,
      "starts-at": starts.toISOString(),
      "ends-at": ends.toISOString(),
      ...options.attributes,
    },
  };
  if (options.relationships) data.relationships = options.relationships;
  const resource = await create(call, "create event", "/v1/events", token, { data });
  return { id: resource.id, identifier: resource.attributes.identifier, resource };
}

/** Creates a ticket (paid, 10) for `eventId`; returns its id. */
export async function createTicket(
  call: Call,
  token: string,
  ticket: { eventId: string; attributes?: Record<string, unknown> },
): Promise<string> {
  const data = {
    type: "ticket",
    attributes: { name: `Ticket ${++counter}`, type: "paid", price: 10, ...ticket.attributes },
    relationships: { event: { data: { type: "event", id: ticket.eventId } } },
  };
  return (await create(call, "create ticket", "/v1/tickets", token, { data })).id;
}

/** Creates an event topic as `adminToken`'s user; returns its id. */
export async function createTopic(call: Call, adminToken: string, name?: string): Promise<string> {
  const data = { type: "event-topic", attributes: { name: name ?? `Topic ${++counter}` } };
  return (await create(call, "create topic", "/v1/event-topics", adminToken, { data })).id;
}

/** Creates an event sub-topic of `topicId` as `adminToken`'s user; returns its id. */
export async function createSubTopic(
  call: Call,
  adminToken: string,
  subTopic: { topicId: string; name?: string },
): Promise<string> {
  const data = {
    type: "event-sub-topic",
    attributes: { name: subTopic.name ?? `Sub-topic ${++counter}` },
    relationships: { "event-topic": { data: { type: "event-topic", id: subTopic.topicId } } },
  };
  const path = "/v1/event-sub-topics";
  return (await create(call, "create sub-topic", path, adminToken, { data })).id;
}

/** Grants `grant.role` on an event as `token`'s user; returns the grant's id. */
export async function grantRole(call: Call, token: string, grant: RoleGrant): Promise<string> {
  const data = {
    type: "users-events-role",
    relationships: {
      user: { data: { type: "user", id: grant.userId } },
      event: { data: { type: "event", id: grant.eventId } },
      role: { data: { type: "role", id: grant.role } },
    },
  };
  return (await create(call, "grant a role", "/v1/users-events-roles", token, { data })).id;
}

/**
 * An event owned by a new user, with a new organizer, co-organizer and an unrelated user: the
 * people every permission matrix needs. `sql` (the catalog's schema) finds the owner's grant.
 */
export async function eventWithCast(
  call: Call,
  sql: Sql,
  options?: NewEventOptions,
): Promise<EventCast> {
  const [owner, organizer, coorganizer, stranger] = await Promise.all(
    [0, 1, 2, 3].map(() => signUp(call)),
  );
  const event = await createEvent(call, owner.token, options);
  const [ownerGrant] = await sql`select id from users_events_roles
    where event_id = ${event.id} and role_name = 'owner'`;
  const grant = (user: TestUser, role: EventRoleName) =>
    grantRole(call, owner.token, { userId: user.id, eventId: event.id, role });
  const grants = {
    owner: String(ownerGrant.id),
    organizer: await grant(organizer, "organizer"),
    coorganizer: await grant(coorganizer, "coorganizer"),
  };
  return { event, owner, organizer, coorganizer, stranger, grants };
}
