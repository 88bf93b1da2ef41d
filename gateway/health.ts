/**
 * The gateway's three health routes. `GET /health/live`: the process serves HTTP (a liveness
 * probe: restart it when not). `GET /health/ready`: this gateway can serve, which is being
 * connected to NATS (a readiness probe or load balancer check: send it traffic when so). Neither
 * asks the services: a gateway whose probes followed one lost service was pulled from its load
 * balancer, every one of them at once, though it serves the other services' routes and answers
 * the lost one's with a 503 at once (found by a review, 2026-12-03).
 *
 * `GET /health`: the system-wide view, asks NATS service discovery how many instances of each expected service answer,
 * all at once, and says 503 naming the missing ones, and the impaired ones: those whose every
 * instance names a problem in its ping answer (its database does not answer, say), since they
 * answer pings while every request they get fails.
 *
 * Under load instances answer a ping late: waiting 50 ms of silence (as discovery did) missed
 * running instances. Each check now waits until every instance seen in the last RECENT_MS has
 * answered (plus a short tail for new ones), bounded by MAX_WAIT_MS: a healthy system answers
 * as fast as its slowest instance. An instance that was waited for and did not answer twice in a
 * row is waited for no more until it answers again: a lost instance makes two checks slow, not
 * every check for RECENT_MS (for /metrics that was every scrape for 3 minutes, each 2 s long).
 */
import type { Handler } from "hono";
import { createInbox, type Msg } from "@nats-io/nats-core";
import type { Bus, ServiceIdentity } from "@shared/bus.ts";
import type { GatewayEnv } from "./env.ts";
import { PRIVATE } from "./http_cache.ts";

/** Longest wait for instances' answers. */
const MAX_WAIT_MS = 1_000;
/** After the expected count answered, how long more answers may take to still count. */
const TAIL_MS = 50;

/** How long an instance that answered once is waited for by later checks. */
const RECENT_MS = 10_000;

/** Asks in a row an instance was waited for and did not answer, before it is waited for no more. */
const MISSES_BEFORE_GIVING_UP = 2;

/** What the checks know of one instance. */
interface Sighting {
  /** When it last answered. */
  at: number;
  /** Asks in a row it was waited for and did not answer. */
  misses: number;
}

/** What is known of each instance, per bus prefix and service: what checks wait for. */
const seen = new Map<string, Map<string, Sighting>>();

/** The longest window any caller asks for: entries older than this are forgotten. */
const LONGEST_RECENT_MS = 600_000;

/**
 * What is known of each instance of `key` (the map kept for all callers), and the ones an ask
 * with the window `recentMs` waits for: answered within it, and not given up on. Callers with
 * different windows share it: pruned to a caller's own window, /health (10 s) made /metrics
 * (180 s) forget what it waits for (found by a review).
 */
function recentlySeen(
  key: string,
  recentMs: number,
): { all: Map<string, Sighting>; expected: string[] } {
  const all = seen.get(key) ?? new Map<string, Sighting>();
  seen.set(key, all);
  const now = Date.now();
  const expected: string[] = [];
  for (const [id, { at, misses }] of all) {
    if (now - at > LONGEST_RECENT_MS) all.delete(id);
    else if (now - at <= recentMs && misses < MISSES_BEFORE_GIVING_UP) expected.push(id);
  }
  return { all, expected };
}

/** Records who answered an ask, and a miss for each instance it waited for in vain. */
function recordAsk(all: Map<string, Sighting>, expected: string[], answered: Set<string>): void {
  const now = Date.now();
  for (const id of expected) {
    const sighting = all.get(id);
    if (sighting && !answered.has(id)) sighting.misses++;
  }
  for (const id of answered) all.set(id, { at: now, misses: 0 });
}

/** How long `askInstances` waits, and for which instances. */
export interface AskOptions {
  /** Longest wait for the answers (default MAX_WAIT_MS). */
  maxWaitMs?: number;
  /** Instances that answered within this long are waited for (default RECENT_MS). */
  recentMs?: number;
  /** After the expected count answered, how long more answers may take (default TAIL_MS). */
  tailMs?: number;
}

function identityOf(msg: Msg): ServiceIdentity | undefined {
  try {
    return msg.data.length ? JSON.parse(new TextDecoder().decode(msg.data)) : undefined;
  } catch {
    return undefined;
  }
}

/** What the instances of one service said: how many answered, and the problems they named. */
export interface InstanceCount {
  instances: number;
  /** Instances that named no problem. */
  healthy: number;
  /** Every distinct problem named. */
  problems: string[];
}

function countOf(answers: Map<string, string[]>): InstanceCount {
  const problems = new Set([...answers.values()].flat());
  const healthy = [...answers.values()].filter((named) => named.length === 0).length;
  return { instances: answers.size, healthy, problems: [...problems] };
}

/** What every instance's answer says of it: which it is, on which prefix. */
interface Answer {
  id: string;
  metadata?: { prefix?: string };
}

/**
 * Asks every instance of `name` on this bus prefix (`$SRV.<verb>.<name>`: PING, STATS) and gives
 * their answers by instance id: waits until every instance seen in the last RECENT_MS has answered
 * (and TAIL_MS more for new ones), at most `maxWaitMs`. `/health` and `/metrics` both ask so: a
 * scrape that stopped at 250 ms of silence left out a busy instance that `/health` counted (found
 * by a review: the instance an operator most needs to see).
 */
export function askInstances<T extends Answer = ServiceIdentity>(
  bus: Bus,
  verb: "PING" | "STATS",
  name: string,
  options: AskOptions = {},
): Promise<Map<string, T>> {
  const { maxWaitMs = MAX_WAIT_MS, recentMs = RECENT_MS, tailMs = TAIL_MS } = options;
  const known = recentlySeen(`${bus.prefix}/${name}`, recentMs);
  const expected = Math.max(known.expected.length, 1);
  const answers = new Map<string, T>();
  const inbox = createInbox();
  return new Promise((resolve) => {
    let tail: ReturnType<typeof setTimeout> | undefined;
    let done = false;
    const finish = () => {
      // Once: a 503 and a timer could both end the ask, and a second record would count a miss
      // twice.
      if (done) return;
      done = true;
      clearTimeout(cap);
      clearTimeout(tail);
      sub.unsubscribe();
      recordAsk(known.all, known.expected, new Set(answers.keys()));
      resolve(answers);
    };
    const cap = setTimeout(finish, maxWaitMs);
    const sub = bus.nc.subscribe(inbox, {
      callback: (_error, msg) => {
        // 503: nobody listens on the subject at all.
        if (msg.headers?.code === 503) return finish();
        const identity = identityOf(msg) as T | undefined;
        if (identity?.metadata?.prefix === bus.prefix) answers.set(identity.id, identity);
        if (answers.size >= expected) {
          clearTimeout(tail);
          tail = setTimeout(finish, tailMs);
        }
      },
    });
    bus.nc.publish(`$SRV.${verb}.${name}`, undefined, { reply: inbox });
  });
}

/** Pings `$SRV.PING.<name>` and counts the distinct instances on this prefix that answer. */
export async function countInstances(bus: Bus, name: string): Promise<InstanceCount> {
  const answers = await askInstances(bus, "PING", name);
  const problems = new Map([...answers].map(([id, answer]) => [id, answer.problems ?? []]));
  return countOf(problems);
}

export interface HealthReport {
  status: "ok" | "unavailable";
  services: Record<string, { instances: number; problems?: string[] }>;
  /** Services no instance of which answers. */
  missing?: string[];
  /** Services whose every instance answering names a problem. */
  impaired?: string[];
  /** What ails the gateway itself: its link to NATS lost. */
  problems?: string[];
}

const none: InstanceCount = { instances: 0, healthy: 0, problems: [] };

/** The gateway's own problem while its connection to NATS is lost. */
const NATS_LOST = "NATS unreachable: the gateway is reconnecting";

/** Counts the running instances of each service on this bus prefix, and what ails them. */
export async function checkHealth(bus: Bus, services: readonly string[]): Promise<HealthReport> {
  // Without NATS no instance can answer: the pings would name every service missing after a
  // second's wait, and the operator would look for four outages instead of one.
  if (bus.reconnecting) {
    return { status: "unavailable", services: {}, problems: [NATS_LOST] };
  }
  const counts = await Promise.all(
    services.map((name) => countInstances(bus, name).catch(() => none)),
  );
  const report: HealthReport = { status: "ok", services: {} };
  const missing: string[] = [];
  const impaired: string[] = [];
  services.forEach((name, index) => {
    const { instances, healthy, problems } = counts[index];
    report.services[name] = problems.length ? { instances, problems } : { instances };
    if (instances === 0) missing.push(name);
    else if (healthy === 0) impaired.push(name);
  });
  if (missing.length) report.missing = missing;
  if (impaired.length) report.impaired = impaired;
  if (missing.length || impaired.length) report.status = "unavailable";
  return report;
}

/**
 * The `/health` handler.
 *
 * @example
 * ```ts ignore
 * app.get("/health", health({ bus, services: ["catalog"] }));
 * ```
 */
export function health(options: { bus: Bus; services: readonly string[] }): Handler<GatewayEnv> {
  const { bus, services } = options;
  return async function healthHandler(c) {
    const report = await checkHealth(bus, services);
    // Now's state, for whoever asks now: no cache may keep it (the README's rule for every
    // answer the gateway's cache does not hold).
    return c.json(report, report.status === "ok" ? 200 : 503, { "Cache-Control": PRIVATE });
  };
}

/** What `/health/live` and `/health/ready` answer. */
export interface GatewayHealth {
  status: "ok" | "unavailable";
  problems?: string[];
}

/** The gateway's own problem once its connection to NATS is closed for good (it is stopping). */
const NATS_CLOSED = "NATS connection closed: the gateway is stopping";

/** The gateway's own problem once SIGTERM came: it serves on for SHUTDOWN_DELAY_MS, then stops. */
const DRAINING = "stopping: send new requests to another gateway";

/**
 * Whether this gateway can serve: connected to NATS (the services are /health's business), and
 * not stopping.
 */
export function checkReady(bus: Bus, draining = false): GatewayHealth {
  if (draining) return { status: "unavailable", problems: [DRAINING] };
  if (bus.nc.isClosed()) return { status: "unavailable", problems: [NATS_CLOSED] };
  if (bus.reconnecting) return { status: "unavailable", problems: [NATS_LOST] };
  return { status: "ok" };
}

/**
 * The `/health/live` handler: 200 while the process serves HTTP, whatever NATS or the services do
 * (a restart fixes neither).
 *
 * @example
 * ```ts ignore
 * app.get("/health/live", live());
 * ```
 */
export function live(): Handler<GatewayEnv> {
  return function liveHandler(c) {
    return c.json({ status: "ok" } satisfies GatewayHealth, 200, { "Cache-Control": PRIVATE });
  };
}

/**
 * The `/health/ready` handler: 200 while connected to NATS and not stopping (`draining`), else
 * 503 naming the problem.
 *
 * @example
 * ```ts ignore
 * app.get("/health/ready", ready({ bus, draining: () => false }));
 * ```
 */
export function ready(options: { bus: Bus; draining?: () => boolean }): Handler<GatewayEnv> {
  const { bus, draining = () => false } = options;
  return function readyHandler(c) {
    const report = checkReady(bus, draining());
    return c.json(report, report.status === "ok" ? 200 : 503, { "Cache-Control": PRIVATE });
  };
}
