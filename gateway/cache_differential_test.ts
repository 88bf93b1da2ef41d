/**
 * The response cache against no cache: one system, three gateways on its bus (the test system's,
 * a whole gateway with the short way of hits, one with CACHE_MAX_BYTES=0). A seeded sequence of
 * writes goes through any of them; after each, once its facts are out and the settle window is
 * over (the documented bound), every public URL must answer the same status and bytes on all
 * three, and no anonymous answer may show a draft, a deleted row or a private field.
 */
import assert from "node:assert/strict";
import { caller, type CallResult, type TestUser } from "@testing/system.ts";
import { settledCache, shortSettle } from "@testing/cache_settle.ts";
import { testBus } from "@shared/testing.ts";
import { createLogger } from "@shared/log.ts";
import type { Call } from "@testing/call.ts";
import {
  codeBody,
  type DiscountsTestSystem,
  startDiscountsSystem,
} from "../services/discounts/_test_utils.ts";
import { catalog } from "@shared/subjects.ts";
import { createGateway } from "./app.ts";

/** Longer hunts: `DIFF_STEPS=300 DIFF_SEED=5 deno test -A gateway/cache_differential_test.ts`. */
const STEPS = Number(Deno.env.get("DIFF_STEPS") ?? 40);
const SEED = Number(Deno.env.get("DIFF_SEED") ?? 7);
/**
 * When the caches are compared after a write: `settled` (default) once its facts are out and the
 * settle window is over; `facts` as soon as its facts are out; `own` right after its reply, on
 * the writer's gateway only; `race` as `facts`, with reads racing the write.
 */
const MODE = Deno.env.get("DIFF_MODE") ?? "settled";

/** mulberry32: a small seeded generator, so a failing run can be repeated. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, pick: <T>(xs: T[]): T => xs[Math.floor(next() * xs.length)] };
}

type Rng = ReturnType<typeof rng>;

function codeOf(reply: CallResult, event: string) {
  return { id: reply.body.data.id, code: reply.body.data.attributes.code, event };
}

async function gatewayOn(system: DiscountsTestSystem, maxBytes?: number) {
  const bus = await testBus(system.prefix);
  system.defer(async () => await bus[Symbol.asyncDispose]());
  const config = maxBytes === undefined
    ? system.config
    : { ...system.config, cache: { ...system.config.cache, maxBytes } };
  const gateway = createGateway({ bus: bus.bus, config, logger: createLogger("g", "error") });
  await bus.bus.nc.flush();
  const viaFetch: Call = async (method, path) => {
    const response = await gateway.fetch(new Request(`http://localhost${path}`, { method }));
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch { /* not JSON */ }
    return { status: response.status, headers: response.headers, body, text };
  };
  return { call: caller(gateway.app), fetch: viaFetch };
}

interface World {
  owners: TestUser[];
  others: TestUser[];
  topics: string[];
  subs: string[];
  events: { id: string; identifier: string; owner: TestUser }[];
  tickets: { id: string; event: string }[];
  codes: { id: string; code: string; event: string }[];
  grants: string[];
  /** The event-kind code, applied to some events. */
  eventCode: { id: string; code: string };
}

async function seed(system: DiscountsTestSystem): Promise<World> {
  const w: World = {
    owners: [],
    others: [],
    topics: [],
    subs: [],
    events: [],
    tickets: [],
    codes: [],
    grants: [],
    eventCode: { id: "", code: "" },
  };
  for (let i = 0; i < 3; i++) w.owners.push(await system.signUp());
  for (let i = 0; i < 2; i++) w.others.push(await system.signUp());
  for (const name of ["Alpha", "Beta", "Gamma"]) {
    const topic = await system.createTopic(name);
    w.topics.push(topic);
    w.subs.push(await system.createSubTopic(topic, `${name} one`));
  }
  for (let i = 0; i < 6; i++) {
    const owner = w.owners[i % 3];
    const event = await system.createEvent(owner.token, {
      attributes: { state: i % 3 === 2 ? "draft" : "published", "can-pay-by-stripe": true },
      relationships: {
        "event-topic": { data: { type: "event-topic", id: w.topics[i % 3] } },
        "event-sub-topic": { data: { type: "event-sub-topic", id: w.subs[i % 3] } },
      },
    });
    w.events.push({ ...event, owner });
    for (let t = 0; t < 2; t++) {
      const id = await system.createTicket(owner.token, event.id, { type: "paid", price: 20 });
      w.tickets.push({ id, event: event.id });
    }
    const body = codeBody({ eventId: event.id, ticketIds: [w.tickets.at(-1)!.id] });
    const reply = await system.call("POST", "/v1/discount-codes", { token: owner.token, body });
    assert.equal(reply.status, 201, reply.text);
    w.codes.push({
      id: reply.body.data.id,
      code: reply.body.data.attributes.code,
      event: event.id,
    });
  }
  const body = codeBody({ usedFor: "event", eventIds: [w.events[0].id, w.events[1].id] });
  const reply = await system.call("POST", "/v1/discount-codes", {
    token: system.admin.token,
    body,
  });
  assert.equal(reply.status, 201, reply.text);
  w.eventCode = { id: reply.body.data.id, code: reply.body.data.attributes.code };
  return w;
}

/** A list filtered by `conditions`, in the JSON form open-event-frontend sends. */
function filtered(path: string, conditions: unknown[]): string {
  return `${path}?filter=${encodeURIComponent(JSON.stringify(conditions))}`;
}

/** Lists that do not depend on which resources exist: sorted, paged, included, filtered. */
const LISTS = [
  "/v1/events",
  "/v1/events?sort=name",
  "/v1/events?sort=-name&page[size]=2&page[number]=2",
  "/v1/events?include=event-topic,event-sub-topic,tickets",
  "/v1/events?include=owner",
  "/v1/events?include=event-sub-topic.event-topic",
  "/v1/events?fields[event]=name,state",
  "/v1/events?include=tickets&fields[ticket]=name,price&fields[event]=name,tickets",
  "/v1/events?get_trashed=true",
  filtered("/v1/events", [{ name: "state", op: "eq", val: "published" }]),
  filtered("/v1/events", [{
    name: "event-topic",
    op: "has",
    val: { name: "name", op: "eq", val: "Alpha" },
  }]),
  filtered("/v1/events", [{
    name: "tickets",
    op: "any",
    val: { name: "price", op: "gt", val: 25 },
  }]),
  filtered("/v1/event-topics", [{
    name: "events",
    op: "any",
    val: { name: "name", op: "like", val: "N%" },
  }]),
  "/v1/event-topics",
  "/v1/event-topics?include=events,event-sub-topics",
  "/v1/event-sub-topics",
  "/v1/event-sub-topics?include=event-topic,events",
  "/v1/event-types",
];

/** Every public URL shape for each event, by id and by identifier. */
function eventUrls(e: World["events"][number]): string[] {
  const out: string[] = [];
  for (const key of [e.id, e.identifier]) {
    out.push(`/v1/events/${key}`, `/v1/events/${key}?include=tickets,event-topic`);
    out.push(`/v1/events/${key}/tickets`, `/v1/events/${key}/event-topic`);
  }
  out.push(`/v1/events/${e.id}/event-sub-topic`, `/v1/events/${e.id}/relationships/tickets`);
  out.push(`/v1/events/${e.id}?include=owner,event-sub-topic`);
  out.push(`/v1/events/${e.id}/owner`, `/v1/events/${e.id}/relationships/event-topic`);
  out.push(`/v1/events/${e.identifier}?include=event-sub-topic.event-topic,owner`);
  return out;
}

/** The public URLs of the world now: lists, each resource, the checkout lookups. */
function urls(w: World): string[] {
  const out = [...LISTS];
  // Ids not taken yet: their 404s must go when an event is created.
  const last = Math.max(...w.events.map((e) => Number(e.id)));
  out.push(`/v1/events/${last + 1}`, `/v1/events/${last + 2}`);
  for (const topic of w.topics) {
    out.push(`/v1/event-topics/${topic}`, `/v1/event-topics/${topic}/events`);
    out.push(`/v1/event-topics/${topic}/event-sub-topics`);
    out.push(`/v1/event-topics/${topic}/events?include=tickets,event-sub-topic`);
    out.push(`/v1/event-topics/${topic}/relationships/events`);
  }
  for (const sub of w.subs) {
    out.push(`/v1/event-sub-topics/${sub}`, `/v1/event-sub-topics/${sub}/events`);
    out.push(`/v1/event-sub-topics/${sub}/event-topic`);
  }
  for (const e of w.events) {
    out.push(...eventUrls(e));
    out.push(`/v1/events/${e.id}/discount-codes/${w.eventCode.code}?include=events`);
  }
  for (const c of w.codes) {
    const event = w.events.find((e) => e.id === c.event)!;
    out.push(`/v1/events/${c.event}/discount-codes/${c.code}`);
    out.push(`/v1/events/${event.identifier}/discount-codes/${c.code}`);
    out.push(`/v1/events/${c.event}/discount-codes/${c.code}?include=tickets,event,marketer`);
  }
  return out;
}

/** What no anonymous answer may show. */
function leaks(text: string): string | undefined {
  if (/"state":"draft"/.test(text)) return "a draft";
  if (/"deleted-at":"/.test(text)) return "a deleted row";
  if (/"email"|"password"|"is-admin"|"is-super-admin"/.test(text)) return "a private field";
}

/** What a write sees: the system, the world, the gateway it goes through, the generator. */
interface Move {
  system: DiscountsTestSystem;
  w: World;
  call: Call;
  r: Rng;
  /** The event this write is about, picked before the write. */
  e: World["events"][number];
}

type Write = (m: Move) => Promise<CallResult>;

/** A PATCH of one resource as the admin, with `relationships` when given. */
function patch(m: Move, path: string, data: Record<string, unknown>): Promise<CallResult> {
  const attributes = data.attributes ?? {};
  return m.call("PATCH", path, {
    token: m.system.admin.token,
    body: { data: { ...data, attributes } },
  });
}

function remove(m: Move, path: string): Promise<CallResult> {
  return m.call("DELETE", path, { token: m.system.admin.token });
}

function post(m: Move, path: string, body: unknown, token = m.system.admin.token) {
  return m.call("POST", path, { token, body });
}

/** The linkage of an event to topic `i` and its sub-topic. */
function placeOf(w: World, i: number) {
  return {
    "event-topic": { data: { type: "event-topic", id: w.topics[i] } },
    "event-sub-topic": { data: { type: "event-sub-topic", id: w.subs[i] } },
  };
}

const eventWrites: Record<string, Write> = {
  "event-name": (m) =>
    patch(m, `/v1/events/${m.e.id}`, {
      type: "event",
      id: m.e.id,
      attributes: { name: `N${m.r.next()}` },
    }),
  "event-state": (m) =>
    patch(m, `/v1/events/${m.e.id}`, {
      type: "event",
      id: m.e.id,
      attributes: { state: m.r.pick(["draft", "published"]) },
    }),
  "event-topic": (m) =>
    patch(m, `/v1/events/${m.e.id}`, {
      type: "event",
      id: m.e.id,
      relationships: placeOf(m.w, Math.floor(m.r.next() * m.w.topics.length)),
    }),
  "event-delete": (m) => remove(m, `/v1/events/${m.r.pick([m.e.id, m.e.identifier])}`),
  "event-restore": (m) =>
    patch(m, `/v1/events/${m.e.id}?get_trashed=true`, {
      type: "event",
      id: m.e.id,
      attributes: { "deleted-at": null },
    }),
  // Through no gateway: only the fact tells the caches.
  "event-direct": async (m) =>
    await m.system.bus.forward(catalog.events.update, {
      actor: { id: m.system.admin.id },
      params: { id: m.e.id },
      path: `/v1/events/${m.e.id}`,
      query: {},
      body: { data: { type: "event", id: m.e.id, attributes: { name: `D${m.r.next()}` } } },
      requestId: "differential",
    }) as CallResult,
  "event-create": async (m) => {
    const owner = m.r.pick(m.w.owners);
    const starts = Date.now() + 86_400_000;
    const reply = await post(m, "/v1/events", {
      data: {
        type: "event",
        attributes: {
          name: `C${m.r.next()}`,
          state: m.r.pick(["draft", "published"]),
          "starts-at": new Date(starts).toISOString(),
          "ends-at": new Date(starts + 3_600_000).toISOString(),
        },
        relationships: placeOf(m.w, Math.floor(m.r.next() * m.w.topics.length)),
      },
    }, owner.token);
    if (reply.status === 201) {
      const { id, attributes } = reply.body.data;
      m.w.events.push({ id, identifier: attributes.identifier, owner });
    }
    return reply;
  },
};

const topicWrites: Record<string, Write> = {
  "topic-name": (m) => {
    const id = m.r.pick(m.w.topics);
    const attributes = { name: `T${m.r.next()}` };
    return patch(m, `/v1/event-topics/${id}`, { type: "event-topic", id, attributes });
  },
  "topic-delete": (m) => remove(m, `/v1/event-topics/${m.r.pick(m.w.topics)}`),
  "topic-restore": (m) => {
    const id = m.r.pick(m.w.topics);
    const attributes = { "deleted-at": null };
    return patch(m, `/v1/event-topics/${id}?get_trashed=true`, {
      type: "event-topic",
      id,
      attributes,
    });
  },
  "sub-name": (m) => {
    const id = m.r.pick(m.w.subs);
    const attributes = { name: `S${m.r.next()}` };
    return patch(m, `/v1/event-sub-topics/${id}`, { type: "event-sub-topic", id, attributes });
  },
  "sub-move": (m) => {
    const id = m.r.pick(m.w.subs);
    const relationships = {
      "event-topic": { data: { type: "event-topic", id: m.r.pick(m.w.topics) } },
    };
    return patch(m, `/v1/event-sub-topics/${id}`, { type: "event-sub-topic", id, relationships });
  },
  "sub-delete": (m) => remove(m, `/v1/event-sub-topics/${m.r.pick(m.w.subs)}`),
  "sub-restore": (m) => {
    const id = m.r.pick(m.w.subs);
    const attributes = { "deleted-at": null };
    return patch(m, `/v1/event-sub-topics/${id}?get_trashed=true`, {
      type: "event-sub-topic",
      id,
      attributes,
    });
  },
};

const ticketWrites: Record<string, Write> = {
  "ticket-patch": (m) => {
    const { id } = m.r.pick(m.w.tickets);
    const attributes = { name: `K${m.r.next()}`, price: 20 + Math.floor(m.r.next() * 10) };
    return patch(m, `/v1/tickets/${id}`, { type: "ticket", id, attributes });
  },
  "ticket-delete": (m) => remove(m, `/v1/tickets/${m.r.pick(m.w.tickets).id}`),
  "ticket-create": async (m) => {
    const reply = await post(m, "/v1/tickets", {
      data: {
        type: "ticket",
        attributes: { name: `New ${m.r.next()}`, type: "paid", price: 30 },
        relationships: { event: { data: { type: "event", id: m.e.id } } },
      },
    });
    if (reply.status === 201) m.w.tickets.push({ id: reply.body.data.id, event: m.e.id });
    return reply;
  },
};

const codeWrites: Record<string, Write> = {
  "code-patch": (m) => {
    const { id } = m.r.pick(m.w.codes);
    // A code that expires some steps later, with no write to drop its lookup: `expires` must.
    const till = m.r.next() < 0.3 ? new Date(Date.now() + 500 + m.r.next() * 3000) : null;
    const attributes = {
      "is-active": m.r.next() < 0.7,
      value: 1 + Math.floor(m.r.next() * 5),
      "valid-till": till?.toISOString() ?? null,
    };
    return patch(m, `/v1/discount-codes/${id}`, { type: "discount-code", id, attributes });
  },
  "code-delete": (m) => remove(m, `/v1/discount-codes/${m.r.pick(m.w.codes).id}`),
  "code-create": async (m) => {
    const ticket = m.w.tickets.filter((t) => t.event === m.e.id).at(-1);
    const body = codeBody({ eventId: m.e.id, ticketIds: ticket ? [ticket.id] : [] });
    const reply = await post(m, "/v1/discount-codes", body);
    if (reply.status === 201) m.w.codes.push(codeOf(reply, m.e.id));
    return reply;
  },
  "code-tickets": (m) => {
    const code = m.r.pick(m.w.codes);
    const tickets = m.w.tickets.filter((t) => t.event === code.event && m.r.next() < 0.6);
    return m.call("PATCH", `/v1/discount-codes/${code.id}/relationships/tickets`, {
      token: m.system.admin.token,
      body: { data: tickets.map((t) => ({ type: "ticket", id: t.id })) },
    });
  },
  "event-code-events": (m) => {
    const events = m.w.events.filter(() => m.r.next() < 0.4);
    return m.call("PATCH", `/v1/discount-codes/${m.w.eventCode.id}/relationships/events`, {
      token: m.system.admin.token,
      body: { data: events.map((x) => ({ type: "event", id: x.id })) },
    });
  },
};

const userWrites: Record<string, Write> = {
  grant: async (m) => {
    const reply = await post(m, "/v1/users-events-roles", {
      data: {
        type: "users-events-role",
        relationships: {
          user: { data: { type: "user", id: m.r.pick(m.w.others).id } },
          event: { data: { type: "event", id: m.e.id } },
          role: { data: { type: "role", id: m.r.pick(["owner", "organizer", "coorganizer"]) } },
        },
      },
    });
    if (reply.status === 201) m.w.grants.push(reply.body.data.id);
    return reply;
  },
  revoke: (m) => remove(m, `/v1/users-events-roles/${m.r.pick([...m.w.grants, "0"])}`),
  "user-name": (m) => {
    const { id } = m.r.pick([...m.w.owners, ...m.w.others]);
    const attributes = { "first-name": `U${m.r.next()}` };
    return patch(m, `/v1/users/${id}`, { type: "user", id, attributes });
  },
  // A user who owns events (409 while they are an event's only owner).
  "user-delete": (m) => remove(m, `/v1/users/${m.r.pick(m.w.owners).id}`),
};

const WRITES: Record<string, Write> = {
  ...eventWrites,
  ...topicWrites,
  ...ticketWrites,
  ...codeWrites,
  ...userWrites,
};

/** How often each write is drawn: deletions rarer than the rest, so the world lasts. */
const WEIGHTS: Record<string, number> = {
  "event-name": 3,
  "event-state": 3,
  "event-topic": 3,
  "code-patch": 3,
  "event-delete": 1,
  "event-create": 1,
  "topic-delete": 1,
  "sub-delete": 1,
  "sub-move": 1,
  "ticket-delete": 1,
  "code-delete": 1,
  revoke: 1,
  "user-delete": 1,
};
const KINDS = Object.keys(WRITES).flatMap((kind) => Array(WEIGHTS[kind] ?? 2).fill(kind));

/** One random write through `call`; a line saying what it did, for a failure's message. */
async function write(system: DiscountsTestSystem, w: World, call: Call, r: Rng) {
  const e = r.pick(w.events);
  const kind = r.pick(KINDS);
  const reply = await WRITES[kind]({ system, w, call, r, e });
  assert.ok(reply.status < 500, `${kind} on event ${e.id}: ${reply.status} ${reply.text}`);
  return `${kind} on event ${e.id} -> ${reply.status}`;
}

/** The gateways of a run: the system's, a whole one (its short way of hits), one uncached. */
interface Gateways {
  system: DiscountsTestSystem;
  whole: Awaited<ReturnType<typeof gatewayOn>>;
  uncached: Awaited<ReturnType<typeof gatewayOn>>;
}

/** Reads racing the write fill the caches while it happens: none may keep what it replaced. */
async function racedWrite(g: Gateways, w: World, writer: Call, r: Rng, list: string[]) {
  let done = false;
  const racing = async (read: Call, offset: number) => {
    for (let i = offset; !done; i += 7) {
      await read("GET", list[i % list.length]);
      // In-process hits need no I/O: without a turn of the event loop they would starve the
      // services, which run in this process too.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  };
  const written = write(g.system, w, writer, r).finally(() => done = true);
  written.catch(() => {}); // awaited below, where its error fails the test
  await Promise.all([racing(g.system.call, 0), racing(g.whole.fetch, 3)]);
  return await written;
}

/** Waits out the documented bound of `what` (a line of the history) in this run's mode. */
async function bound(system: DiscountsTestSystem, what: string): Promise<void> {
  const direct = what.startsWith("event-direct");
  if (MODE === "own" && !direct) return; // the writer's gateway dropped it before replying
  if (MODE !== "settled") {
    // A change through a gateway or with a fact: gone when the fact arrives.
    await system.readFacts();
    await new Promise((resolve) => setTimeout(resolve, 10));
    return;
  }
  await settledCache(system);
  // State discounts derives from the catalog's facts: announced once applied.
  await settledCache(system);
}

function same(a: CallResult, b: CallResult): boolean {
  return a.status === b.status && a.text === b.text;
}

/** Every URL on the cached gateways against the uncached one; the number of reads compared. */
async function compare(g: Gateways, list: string[], writer: Call, context: () => string) {
  let compared = 0;
  const readers: [string, Call][] = MODE === "own"
    ? [["writer's", writer === g.system.call ? g.system.call : g.whole.fetch]]
    : [["system", g.system.call], ["short way", g.whole.fetch]];
  for (const url of list) {
    // The checkout lookup reads discounts' projection of events, which follows the facts.
    if (MODE !== "settled" && url.includes("/discount-codes/")) continue;
    let truth = await g.uncached.call("GET", url);
    const bad = leaks(truth.text);
    assert.ok(!bad, `${url} shows ${bad} (uncached)\n${context()}\n${truth.text}`);
    for (const [name, read] of readers) {
      // The second read is a hit when the first filled the cache.
      for (let twice = 0; twice < 2; twice++) {
        let seen = await read("GET", url);
        compared++;
        if (same(seen, truth)) continue;
        // A code's validity may have ended between the two reads: read both again.
        truth = await g.uncached.call("GET", url);
        seen = await read("GET", url);
        if (same(seen, truth)) continue;
        assert.fail(
          `${name} gateway differs on ${url}\n${context()}\n` +
            `cached ${seen.status} ${seen.headers.get("X-Cache")}: ${seen.text}\n` +
            `uncached ${truth.status}: ${truth.text}`,
        );
      }
    }
  }
  return compared;
}

Deno.test("[gateway] cached and uncached gateways answer every public URL alike after each write", async () => {
  await using system = await startDiscountsSystem({ env: shortSettle });
  const world = await seed(system);
  const g = { system, whole: await gatewayOn(system), uncached: await gatewayOn(system, 0) };
  const writers = MODE === "own"
    ? [system.call, g.whole.call]
    : [system.call, g.whole.call, g.uncached.call];
  const r = rng(SEED);
  const history: string[] = [];
  let compared = 0;
  for (let step = 0; step < STEPS; step++) {
    const writer = r.pick(writers);
    const before = urls(world);
    history.push(
      MODE === "race"
        ? await racedWrite(g, world, writer, r, before)
        : await write(system, world, writer, r),
    );
    if (Deno.env.get("DIFF_VERBOSE")) console.log(new Date().toISOString(), history.at(-1));
    await bound(system, history.at(-1)!);
    const context = () =>
      `step ${step} (DIFF_SEED=${SEED} DIFF_MODE=${MODE}), the last writes:\n` +
      history.slice(-5).join("\n");
    compared += await compare(g, urls(world), writer, context);
  }
  if (Deno.env.get("DIFF_VERBOSE")) {
    console.log(`${STEPS} steps, ${urls(world).length} URLs, ${compared} reads compared`);
    console.log(history.join("\n"));
  }
  assert.ok(compared > STEPS * 100, "the run compared every URL after each write");
});
