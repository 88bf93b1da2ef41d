/**
 * Fixture factories for the Dredd hooks: each inserts one catalog row with an explicit column
 * list and returns its id. After `resetCatalog` ids start at 1, so a hook that creates rows in a
 * fixed order gets the ids the blueprint's examples name.
 *
 * @example
 * ```ts ignore
 * const owner = await createUser(sql, { email: "olivia@example.com" });
 * const event = await createEvent(sql, { ownerId: owner, identifier: "abcdef01" });
 * await createTicket(sql, { eventId: event });
 * ```
 */
import { sign } from "hono/jwt";
import type { Sql } from "./reset.ts";

/**
 * Every fixture user's password, `fixture-pass-1` (the blueprint's examples log in with it),
 * hashed by `hashPassword(password, 1000)` of services/catalog/passwords.ts once: hashing per
 * fixture would cost more than the rest of the set-up.
 */
const FIXTURE_PASSWORD_HASH =
  "pbkdf2-sha256$1000$FGWSd9XzZ9rWVJa3nlp+Jg==$jPhWK6V2pRs0hApURli8tVdujOAIqFxhjCdT461KMG0=";

export interface UserFixture {
  email: string;
  firstName?: string | null;
  lastName?: string | null;
  isAdmin?: boolean;
  isSuperAdmin?: boolean;
}

export async function createUser(sql: Sql, user: UserFixture): Promise<string> {
  const row = {
    email: user.email,
    password_hash: FIXTURE_PASSWORD_HASH,
    first_name: user.firstName ?? null,
    last_name: user.lastName ?? null,
    is_admin: user.isAdmin ?? false,
    is_super_admin: user.isSuperAdmin ?? false,
  };
  const [{ id }] = await sql`insert into users ${
    sql(row, "email", "password_hash", "first_name", "last_name", "is_admin", "is_super_admin")
  } returning id`;
  return String(id);
}

export interface TopicFixture {
  name: string;
  slug: string;
}

export async function createTopic(sql: Sql, topic: TopicFixture): Promise<string> {
  const row = {
    name: topic.name,
    slug: topic.slug,
    system_image_url: null,
  };
  const [{ id }] = await sql`insert into event_topics ${
    sql(row, "name", "slug", "system_image_url")
  } returning id`;
  return String(id);
}

export interface SubTopicFixture {
  topicId: string;
  name: string;
  slug: string;
}

export async function createSubTopic(sql: Sql, sub: SubTopicFixture): Promise<string> {
  const row = { name: sub.name, slug: sub.slug, event_topic_id: sub.topicId };
  const [{ id }] = await sql`insert into event_sub_topics ${
    sql(row, "name", "slug", "event_topic_id")
  } returning id`;
  return String(id);
}

export interface EventFixture {
  /** Also gets the owner role, as the service does for the creator. */
  ownerId: string;
  /** 8 hex characters, the first one a-f (as the service makes them). */
  identifier: string;
  name?: string;
  state?: "draft" | "published";
  startsAt?: string;
  endsAt?: string;
  topicId?: string | null;
  subTopicId?: string | null;
}

export async function createEvent(sql: Sql, event: EventFixture): Promise<string> {
  const row = {
    identifier: event.identifier,
    name: event.name ?? "Open Tech Summit",
    starts_at: event.startsAt ?? "2030-03-14T09:00:00Z",
    ends_at: event.endsAt ?? "2030-03-16T18:00:00Z",
    timezone: "Asia/Singapore",
    state: event.state ?? "published",
    event_topic_id: event.topicId ?? null,
    event_sub_topic_id: event.subTopicId ?? null,
    owner_id: event.ownerId,
  };
  const [{ id }] = await sql`insert into events ${
    sql(
      row,
      "identifier",
      "name",
      "starts_at",
      "ends_at",
      "timezone",
      "state",
      "event_topic_id",
      "event_sub_topic_id",
      "owner_id",
    )
  } returning id`;
  await grantRole(sql, { userId: event.ownerId, eventId: String(id), role: "owner" });
  return String(id);
}

export interface GrantFixture {
  userId: string;
  eventId: string;
  role: "owner" | "organizer" | "coorganizer";
}

export async function grantRole(sql: Sql, grant: GrantFixture): Promise<string> {
  const row = { user_id: grant.userId, event_id: grant.eventId, role_name: grant.role };
  const [{ id }] = await sql`insert into users_events_roles ${
    sql(row, "user_id", "event_id", "role_name")
  } returning id`;
  return String(id);
}

export interface TicketFixture {
  eventId: string;
  name?: string;
  type?: "free" | "paid" | "donation";
  price?: number;
}

export async function createTicket(sql: Sql, ticket: TicketFixture): Promise<string> {
  const type = ticket.type ?? "paid";
  const row = {
    event_id: ticket.eventId,
    name: ticket.name ?? "Standard",
    type,
    price: (ticket.price ?? (type === "free" ? 0 : 25)).toFixed(2),
    quantity: 100,
  };
  const [{ id }] = await sql`insert into tickets ${
    sql(row, "event_id", "name", "type", "price", "quantity")
  } returning id`;
  return String(id);
}

/** A token as the catalog issues it (HS256, one hour here), signed with the run's secret. */
export async function tokenFor(userId: string, secret: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await sign({ sub: userId, iat: now, exp: now + 3600 }, secret, "HS256");
}

/** The people and the event most transactions start from (ids 1-4 and event 1 after a reset). */
export interface Cast {
  admin: string;
  owner: string;
  coorganizer: string;
  stranger: string;
  event: string;
}

/**
 * A super admin (Ada), an event owner (Olivia), a co-organizer of her event (Cory), a user with no
 * role (Paul), and Olivia's event `abcdef01`.
 */
export async function createCast(sql: Sql): Promise<Cast> {
  const admin = await createUser(sql, {
    email: "admin@example.com",
    firstName: "Ada",
    lastName: "Admin",
    isAdmin: true,
    isSuperAdmin: true,
  });
  const owner = await createUser(sql, {
    email: "olivia@example.com",
    firstName: "Olivia",
    lastName: "Ortiz",
  });
  const coorganizer = await createUser(sql, {
    email: "cory@example.com",
    firstName: "Cory",
    lastName: "Chen",
  });
  const stranger = await createUser(sql, {
    email: "paul@example.com",
    firstName: "Paul",
    lastName: "Park",
  });
  const event = await createEvent(sql, { ownerId: owner, identifier: "abcdef01" });
  await grantRole(sql, { userId: coorganizer, eventId: event, role: "coorganizer" });
  return { admin, owner, coorganizer, stranger, event };
}
