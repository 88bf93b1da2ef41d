/**
 * Dredd hooks for blueprint/catalog.apib. Before each transaction the catalog tables are emptied
 * (ids restart at 1); then the transaction's plan below creates exactly the fixtures it needs and
 * says who calls: the hook puts that user's token into `Authorization`, replacing the
 * blueprint's placeholder. A transaction without a plan fails, so a new blueprint example cannot
 * run silently against an empty database.
 *
 * Needs `DATABASE_URL` (the run's database) and `JWT_SECRET` (the system's), which
 * scripts/dredd.ts passes to Dredd and Dredd to this handler.
 */
import { withGeneratedExamples } from "./error_examples.ts";
import { hooks, type Transaction } from "./hooks.ts";
import {
  createEvent,
  createSubTopic,
  createTicket,
  createTopic,
  createUser,
  grantRole,
  tokenFor,
} from "./factories.ts";
import { closeFixtureDatabase, fixtureDatabase, hookEnv, resetCatalog, type Sql } from "./reset.ts";

/** Who sends the request: the fixture users, in the blueprint's numbering. */
type Who = "admin" | "owner" | "coorganizer" | "outsider";

/** Fixture ids after a reset; the blueprint's examples use the same numbers. */
const USER_IDS: Record<Who, string> = { admin: "1", owner: "2", coorganizer: "3", outsider: "4" };

interface World {
  /** Users 1-3 always; user 4 (no role anywhere) unless this is false. */
  outsider?: boolean;
  /** Topic 1 "Science & Technology" with sub-topic 1 "Open Source". */
  topic?: boolean;
  /** Event 1 `abcdef01` (owner: user 2, grant 1; co-organizer: user 3, grant 2), with the topic. */
  event?: boolean;
  eventState?: "draft" | "published";
  /** False: event 1 has the topic but no sub-topic. */
  eventSubTopic?: boolean;
  /** Event 2 `abcdef02`, a draft of user 2 under the same topic (grant 3). */
  draft?: boolean;
  /** Ticket 1 of event 1. */
  ticket?: boolean;
}

/**
 * An earlier try of the transaction's request with its `Idempotency-Key`, sent through the
 * gateway by the hook: with another body instead of the transaction's, or left "still running"
 * (its stored answer removed and its claim held for a minute, as while a request runs).
 */
interface EarlierTry {
  body?: unknown;
  running?: boolean;
}

interface Plan {
  world?: World;
  as?: Who;
  earlierTry?: EarlierTry;
  /** Event topics there must be after the transaction (a retry must not create another). */
  topicsAfter?: number;
}

const env = hookEnv;
const db = fixtureDatabase;

async function build(sql: Sql, world: World): Promise<void> {
  await createUser(sql, {
    email: "admin@example.com",
    firstName: "Ada",
    lastName: "Admin",
    isAdmin: true,
    isSuperAdmin: true,
  });
  await createUser(sql, { email: "olivia@example.com", firstName: "Olivia", lastName: "Ortiz" });
  await createUser(sql, { email: "cory@example.com", firstName: "Cory", lastName: "Chen" });
  if (world.outsider !== false) {
    await createUser(sql, { email: "paul@example.com", firstName: "Paul", lastName: "Park" });
  }
  const needsTopic = world.topic || world.event || world.draft || world.ticket;
  if (!needsTopic) return;
  const topicId = await createTopic(sql, {
    name: "Science & Technology",
    slug: "science-technology",
  });
  const subTopicId = await createSubTopic(sql, {
    topicId,
    name: "Open Source",
    slug: "open-source",
  });
  if (!(world.event || world.draft || world.ticket)) return;
  const eventId = await createEvent(sql, {
    ownerId: USER_IDS.owner,
    identifier: "abcdef01",
    name: "Open Tech Summit",
    state: world.eventState ?? "published",
    topicId,
    subTopicId: world.eventSubTopic === false ? null : subTopicId,
  });
  await grantRole(sql, { userId: USER_IDS.coorganizer, eventId, role: "coorganizer" });
  if (world.draft) {
    await createEvent(sql, {
      ownerId: USER_IDS.owner,
      identifier: "abcdef02",
      name: "Open Tech Summit Workshop Day",
      state: "draft",
      startsAt: "2030-03-17T09:00:00Z",
      endsAt: "2030-03-17T17:00:00Z",
      topicId,
      subTopicId,
    });
  }
  if (world.ticket) await createTicket(sql, { eventId, name: "Standard", type: "paid", price: 25 });
}

const people: World = {};
const topic: World = { topic: true };
const event: World = { event: true };
const withDraft: World = { event: true, draft: true };
const ticket: World = { ticket: true };
const ARTS_TOPIC = {
  data: {
    type: "event-topic",
    attributes: {
      "name": "Arts & Culture",
      "system-image-url": "https://example.com/images/arts.png",
    },
  },
};

/** One entry per transaction name Dredd prints (`dredd ... --names`). */
const plans: Record<string, Plan> = {
  "Health > Health > Check health": {},
  "Health > Liveness > Check liveness": {},
  "Health > Readiness > Check readiness": {},

  "Auth > Login > Log in > Example 1": { world: people },
  "Auth > Login > Log in > Example 2": { world: people },
  "Auth > Login > Log in > Example 3": { world: people },
  "Auth > Session > Log in (session path)": { world: people },
  "Auth > Frontend session > Log in (the frontend's path)": { world: people },
  "Auth > Fresh login > Log in again > Example 1": { world: people, as: "owner" },
  "Auth > Fresh login > Log in again > Example 2": { world: people, as: "owner" },
  "Auth > Fresh login > Log in again > Example 3": { world: people },
  "Auth > Change password > Change the password > Example 1": { world: people, as: "owner" },
  "Auth > Change password > Change the password > Example 2": { world: people, as: "owner" },
  "Auth > Change password > Change the password > Example 3": { world: people, as: "owner" },
  "Auth > Change password > Change the password > Example 4": { world: people, as: "owner" },
  "Auth > Change password > Change the password > Example 5": { world: people },
  "Auth > Logout > Log out": {},

  "Users > Users > List users > Example 1": { world: people, as: "admin" },
  "Users > Users > List users > Example 2": { world: people, as: "outsider" },
  "Users > Users > List users > Example 3": { world: people },
  "Users > Users > Sign up > Example 1": { world: people },
  "Users > Users > Sign up > Example 2": { world: people },
  "Users > Users > Sign up > Example 3": { world: people },
  "Users > Users > Sign up > Example 4": { world: people },
  "Users > Users > Sign up > Example 5": { world: people },
  "Users > Users > Search users": { world: people, as: "admin" },
  "Users > Users > Search users by an unknown field": { world: people, as: "admin" },
  "Users > User > Get a user > Example 1": { world: people, as: "outsider" },
  "Users > User > Get a user > Example 2": { world: people, as: "coorganizer" },
  "Users > User > Get a user > Example 3": { world: { outsider: false }, as: "admin" },
  "Users > User > Update a user > Example 1": { world: people, as: "outsider" },
  "Users > User > Update a user > Example 2": { world: people, as: "outsider" },
  "Users > User > Update a user > Example 3": { world: people, as: "outsider" },
  "Users > User > Update a user > Example 4": { world: people, as: "outsider" },
  "Users > User > Delete a user > Example 1": { world: people, as: "outsider" },
  "Users > User > Delete a user > Example 2": { world: people, as: "coorganizer" },
  "Users > User events > List a user's events > Example 1": { world: event, as: "coorganizer" },
  "Users > User events > List a user's events > Example 2": { world: event, as: "outsider" },
  "Users > User event roles > List a user's event roles": { world: event, as: "coorganizer" },
  "Users > User events relationship > Get a user's event linkage": { world: event, as: "admin" },
  "Users > User event roles relationship > Get a user's event role linkage": {
    world: event,
    as: "coorganizer",
  },
  "Users > User owner events > List the events a user owns": { world: withDraft, as: "owner" },
  "Users > User organizer events > List the events a user organizes": {
    world: withDraft,
    as: "admin",
  },
  "Users > User co-organizer events > List the events a user co-organizes": {
    world: withDraft,
    as: "coorganizer",
  },
  "Users > User marketer events > List the events a user markets": {
    world: event,
    as: "coorganizer",
  },
  "Users > User owner events relationship > Get a user's owner event linkage": {
    world: withDraft,
    as: "owner",
  },
  "Users > User organizer events relationship > Get a user's organizer event linkage": {
    world: withDraft,
    as: "admin",
  },
  "Users > User co-organizer events relationship > Get a user's co-organizer event linkage": {
    world: withDraft,
    as: "admin",
  },
  "Users > User marketer events relationship > Get a user's marketer event linkage": {
    world: event,
    as: "coorganizer",
  },

  "Roles > Roles > List roles > Example 1": {},
  "Roles > Roles > List roles > Example 2": {},
  "Roles > Role > Get a role": {},
  "Roles > Role > Get an unknown role": {},

  "Users Events Roles > Event roles > Grant a role > Example 1": { world: event, as: "owner" },
  "Users Events Roles > Event roles > Grant a role > Example 2": {
    world: event,
    as: "coorganizer",
  },
  "Users Events Roles > Event roles > Grant a role > Example 3": { world: event, as: "owner" },
  "Users Events Roles > Event roles > Grant a role > Example 4": { world: event, as: "owner" },
  "Users Events Roles > Event role > Get an event role > Example 1": {
    world: event,
    as: "coorganizer",
  },
  "Users Events Roles > Event role > Get an event role > Example 2": {
    world: event,
    as: "outsider",
  },
  "Users Events Roles > Event role > Change an event role > Example 1": {
    world: event,
    as: "owner",
  },
  "Users Events Roles > Event role > Change an event role > Example 2": {
    world: event,
    as: "coorganizer",
  },
  "Users Events Roles > Event role > Revoke an event role > Example 1": {
    world: event,
    as: "owner",
  },
  "Users Events Roles > Event role > Revoke an event role > Example 2": {
    world: event,
    as: "coorganizer",
  },
  "Users Events Roles > Event role > Revoke another's event role as a co-organizer": {
    world: event,
    as: "coorganizer",
  },
  "Users Events Roles > Event role > Demote the last owner": { world: event, as: "owner" },
  "Users Events Roles > Event role user > Get the user of an event role": {
    world: event,
    as: "owner",
  },
  "Users Events Roles > Event role event > Get the event of an event role": {
    world: event,
    as: "coorganizer",
  },
  "Users Events Roles > Event role role > Get the role of an event role": {
    world: event,
    as: "coorganizer",
  },
  "Users Events Roles > Event role user relationship > Get the user linkage of an event role": {
    world: event,
    as: "coorganizer",
  },
  "Users Events Roles > Event role event relationship > Get the event linkage of an event role": {
    world: event,
    as: "coorganizer",
  },
  "Users Events Roles > Event role role relationship > Get the role linkage of an event role": {
    world: event,
    as: "coorganizer",
  },

  "Events > Events > List events > Example 1": { world: withDraft },
  "Events > Events > List events > Example 2": { world: withDraft, as: "owner" },
  "Events > Events > Search events": { world: { ...withDraft, ticket: true } },
  "Events > Events > List events sorted by an unknown key": {},
  "Events > Events > Create an event > Example 1": { world: event, as: "outsider" },
  "Events > Events > Create an event > Example 2": { world: people },
  "Events > Events > Create an event > Example 3": { world: people, as: "outsider" },
  "Events > Events > Create an event > Example 4": { world: people, as: "outsider" },
  "Events > Events > Create an event > Example 5": { world: people, as: "outsider" },
  "Events > Events > Create an event > Example 6": { world: people, as: "outsider" },
  "Events > Event > Get an event > Example 1": { world: event },
  "Events > Event > Get an event > Example 2": {
    world: { event: true, eventState: "draft" },
    as: "outsider",
  },
  "Events > Event > Get an event > Example 3": { world: event },
  "Events > Event > Get an event with its tickets": { world: ticket },
  "Events > Event > Update an event > Example 1": { world: event, as: "coorganizer" },
  "Events > Event > Update an event > Example 2": { world: event, as: "outsider" },
  "Events > Event > Update an event > Example 3": { world: event, as: "coorganizer" },
  "Events > Event > Update an event > Example 4": { world: event, as: "coorganizer" },
  "Events > Event > Delete an event > Example 1": { world: event, as: "owner" },
  "Events > Event > Delete an event > Example 2": { world: event, as: "outsider" },
  "Events > Event by identifier > Get an event by identifier": { world: event },
  "Events > Event by identifier > Update an event by identifier": { world: event, as: "owner" },
  "Events > Event topic of an event > Get the topic of an event": { world: event },
  "Events > Event sub-topic of an event > Get the sub-topic of an event > Example 1": {
    world: event,
  },
  "Events > Event sub-topic of an event > Get the sub-topic of an event > Example 2": {
    world: { event: true, eventSubTopic: false },
    as: "outsider",
  },
  "Events > Tickets of an event > List the tickets of an event": { world: ticket },
  "Events > Owner of an event > Get the owner of an event": { world: event },
  "Events > Roles of an event > List the roles of an event > Example 1": {
    world: event,
    as: "coorganizer",
  },
  "Events > Roles of an event > List the roles of an event > Example 2": {
    world: event,
    as: "outsider",
  },
  "Events > Event topic relationship of an event > Get the topic linkage of an event": {
    world: event,
  },
  "Events > Event sub-topic relationship of an event > Get the sub-topic linkage of an event": {
    world: event,
  },
  "Events > Tickets relationship of an event > Get the ticket linkage of an event": {
    world: ticket,
  },
  "Events > Tickets relationship of an event > Get the ticket linkage with the tickets": {
    world: ticket,
  },
  "Events > Owner relationship of an event > Get the owner linkage of an event": { world: event },
  "Events > Roles relationship of an event > Get the role linkage of an event > Example 1": {
    world: event,
    as: "owner",
  },
  "Events > Roles relationship of an event > Get the role linkage of an event > Example 2": {
    world: event,
    as: "outsider",
  },

  "Event Topics > Event topics > List event topics": { world: topic },
  "Event Topics > Event topics > Create an event topic > Example 1": { world: topic, as: "admin" },
  "Event Topics > Event topics > Create an event topic > Example 2": { world: topic, as: "owner" },
  "Event Topics > Event topics > Create an event topic > Example 3": { world: topic, as: "admin" },
  "Event Topics > Event topics > Create an event topic > Example 4": { world: topic, as: "admin" },
  "Event Topics > Event topics > List event topics with a nameless parameter": {},
  "Event Topics > Event topics > Retry creating an event topic > Example 1": {
    world: topic,
    as: "admin",
    earlierTry: {},
    topicsAfter: 2,
  },
  "Event Topics > Event topics > Retry creating an event topic > Example 2": {
    world: topic,
    as: "admin",
    earlierTry: { body: ARTS_TOPIC },
    topicsAfter: 2,
  },
  "Event Topics > Event topics > Retry creating an event topic > Example 3": {
    world: topic,
    as: "admin",
    earlierTry: { running: true },
    topicsAfter: 2,
  },
  "Event Topics > Event topics > Retry creating an event topic > Example 4": {
    world: topic,
    as: "admin",
    topicsAfter: 1,
  },
  "Event Topics > Event topic > Get an event topic > Example 1": { world: topic },
  "Event Topics > Event topic > Get an event topic > Example 2": { world: people, as: "admin" },
  "Event Topics > Event topic > Get an event topic with its sub-topics": { world: topic },
  "Event Topics > Event topic > Update an event topic > Example 1": { world: topic, as: "admin" },
  "Event Topics > Event topic > Update an event topic > Example 2": { world: topic, as: "owner" },
  "Event Topics > Event topic > Delete an event topic > Example 1": { world: topic, as: "admin" },
  "Event Topics > Event topic > Delete an event topic > Example 2": { world: topic },
  "Event Topics > Events of an event topic > List the events of an event topic": {
    world: withDraft,
  },
  "Event Topics > Sub-topics of an event topic > List the sub-topics of an event topic": {
    world: topic,
  },
  "Event Topics > Events relationship of an event topic > Get the event linkage of an event topic":
    { world: withDraft },
  "Event Topics > Sub-topics relationship of an event topic > Get the sub-topic linkage of an event topic":
    { world: topic },

  "Event Sub-topics > Event sub-topics > List event sub-topics": { world: topic },
  "Event Sub-topics > Event sub-topics > Create an event sub-topic > Example 1": {
    world: topic,
    as: "admin",
  },
  "Event Sub-topics > Event sub-topics > Create an event sub-topic > Example 2": {
    world: topic,
    as: "owner",
  },
  "Event Sub-topics > Event sub-topics > Create an event sub-topic > Example 3": {
    world: topic,
    as: "admin",
  },
  "Event Sub-topics > Event sub-topic > Get an event sub-topic": { world: topic },
  "Event Sub-topics > Event sub-topic > Update an event sub-topic > Example 1": {
    world: topic,
    as: "admin",
  },
  "Event Sub-topics > Event sub-topic > Update an event sub-topic > Example 2": {
    world: topic,
    as: "coorganizer",
  },
  "Event Sub-topics > Event sub-topic > Delete an event sub-topic > Example 1": {
    world: topic,
    as: "admin",
  },
  "Event Sub-topics > Event sub-topic > Delete an event sub-topic > Example 2": { world: topic },
  "Event Sub-topics > Topic of an event sub-topic > Get the topic of an event sub-topic": {
    world: topic,
  },
  "Event Sub-topics > Events of an event sub-topic > List the events of an event sub-topic": {
    world: withDraft,
  },
  "Event Sub-topics > Topic relationship of an event sub-topic > Get the topic linkage of an event sub-topic":
    { world: topic },
  "Event Sub-topics > Events relationship of an event sub-topic > Get the event linkage of an event sub-topic":
    { world: withDraft },

  // Not kept here: always empty, with events or without.
  "Event Types > Event types > List event types": { world: event },

  "Tickets > Tickets > List tickets > Example 1": { world: ticket, as: "admin" },
  "Tickets > Tickets > List tickets > Example 2": { world: ticket, as: "owner" },
  "Tickets > Tickets > Create a ticket > Example 1": { world: ticket, as: "coorganizer" },
  "Tickets > Tickets > Create a ticket > Example 2": { world: event, as: "outsider" },
  "Tickets > Tickets > Create a ticket > Example 3": { world: event, as: "coorganizer" },
  "Tickets > Tickets > Create a ticket > Example 4": { world: ticket, as: "coorganizer" },
  "Tickets > Ticket > Get a ticket > Example 1": { world: ticket, as: "owner" },
  "Tickets > Ticket > Get a ticket > Example 2": { world: ticket, as: "outsider" },
  "Tickets > Ticket > Update a ticket > Example 1": { world: ticket, as: "coorganizer" },
  "Tickets > Ticket > Update a ticket > Example 2": { world: ticket, as: "coorganizer" },
  "Tickets > Ticket > Delete a ticket > Example 1": { world: ticket, as: "owner" },
  "Tickets > Ticket > Delete a ticket > Example 2": { world: ticket },
  "Tickets > Event of a ticket > Get the event of a ticket": { world: ticket, as: "coorganizer" },
  "Tickets > Event relationship of a ticket > Get the event linkage of a ticket": {
    world: ticket,
    as: "coorganizer",
  },
};

/** The plans above, extended to the generated error examples (hooks/error_examples.ts). */
const allPlans = withGeneratedExamples(plans, "blueprint/catalog.apib");

/** The blueprint's `Authorization: JWT <...>` placeholders name who calls; the plan supplies it. */
function hasPlaceholder(transaction: Transaction): boolean {
  const header = transaction.request.headers.Authorization ?? "";
  return header.includes("<");
}

/** Transactions of other blueprints are planned by their own hook files (hooks/audit.ts, ...). */
function fromOtherBlueprint(transaction: Transaction): boolean {
  const file = (transaction.origin as { filename?: string } | undefined)?.filename;
  return !!file && !file.endsWith("catalog.apib");
}

hooks.beforeEach(async (transaction) => {
  if (fromOtherBlueprint(transaction)) return;
  const plan = allPlans[transaction.name];
  if (!plan) {
    transaction.fail = `Cannot prepare "${transaction.name}": hooks/catalog.ts has no plan for it`;
    return;
  }
  if (hasPlaceholder(transaction) && !plan.as) {
    transaction.fail = `Cannot prepare "${transaction.name}": its plan names no caller`;
    return;
  }
  await resetCatalog(db());
});

/** Sends the transaction's request (or it with `earlier.body`) once, as an earlier try. */
async function sendEarlierTry(transaction: Transaction, earlier: EarlierTry): Promise<void> {
  const { protocol, host, port, fullPath, request } = transaction;
  const body = earlier.body === undefined ? request.body : JSON.stringify(earlier.body);
  const url = `${protocol}//${host}:${port}${fullPath}`;
  const response = await fetch(url, { method: request.method, headers: request.headers, body });
  await response.body?.cancel();
  if (response.status >= 300) throw new Error(`the earlier try got ${response.status}`);
  if (earlier.running) {
    const key = request.headers["Idempotency-Key"];
    await db()`update idempotency_keys set reply = null,
      locked_until = now() + interval '1 minute' where key = ${key}`;
  }
}

for (const [name, plan] of Object.entries(allPlans)) {
  hooks.before(name, async (transaction) => {
    if (plan.world) await build(db(), plan.world);
    if (plan.as) {
      const token = await tokenFor(USER_IDS[plan.as], env("JWT_SECRET"));
      transaction.request.headers.Authorization = `JWT ${token}`;
    }
    if (plan.earlierTry) await sendEarlierTry(transaction, plan.earlierTry);
  });
  if (plan.topicsAfter === undefined) continue;
  hooks.after(name, async (transaction) => {
    const [{ count }] = await db()`select count(*)::int as count from event_topics`;
    if (count !== plan.topicsAfter) {
      transaction.fail = `Expected ${plan.topicsAfter} event topics afterwards, found ${count}`;
    }
  });
}

hooks.afterAll(async () => {
  await closeFixtureDatabase();
});
