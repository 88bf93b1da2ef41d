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
 * as fast as its slowest instance. An instance that two asks of one verb in a row waited for to
 * their cap in vain is waited for no more until it answers again (late answers are heard until
 * the cap): a lost instance makes two checks slow, not every check for RECENT_MS (for /metrics
 * that was every scrape for 3 minutes, each 2 s long).
 */
import type { Handler } from "hono";
import type { Msg } from "@nats-io/nats-core";
import { type Bus, INSTANCE_LEFT, type ServiceIdentity } from "@shared/bus.ts";
import { LinePace, type Logger } from "@shared/log.ts";
import { JWT_SECRET_METADATA, secretFingerprint } from "@shared/secret_fingerprint.ts";
import type { GatewayEnv } from "./env.ts";
import { PRIVATE } from "./http_cache.ts";

/** Longest wait for instances' answers. */
const MAX_WAIT_MS = 1_000;
/** After every instance waited for answered, how long more answers may take to still count. */
const TAIL_MS = 50;

/** How long an instance that answered once is waited for by later checks. */
const RECENT_MS = 10_000;

/**
 * Asks of one verb in a row that ran to their cap without an instance's answer, before asks of
 * that verb wait for it no more (until it answers again).
 */
const MISSES_BEFORE_GIVING_UP = 2;

type Verb = "PING" | "STATS";

/** Asks of one verb in a row that ran to their cap without the instance, and when the last did. */
interface Miss {
  count: number;
  /** `performance.now()` when the last miss was charged. */
  at: number;
}

/** What the checks know of one instance. */
interface Sighting {
  /** When it last answered (either verb: it is alive), by the asks' clock (`AskOptions.now`). */
  at: number;
  /**
   * Per verb (/health pings with a 1 s cap, /metrics asks for STATS with 2 s: an instance too busy
   * for one may answer the other in time).
   */
  misses: Partial<Record<Verb, Miss>>;
}

/** What is known of each instance, per bus prefix and service: what checks wait for. */
const seen = new Map<string, Map<string, Sighting>>();

/** Asks waiting now, per bus prefix and service: each is told the id of an instance that left. */
const asking = new Map<string, Set<(id: string) => void>>();

/** Buses whose instances' leaving is followed already (`forgetLeavers`). */
const following = new WeakSet<Bus>();

/**
 * Forgets each instance that says it stopped (shared/bus.ts's `INSTANCE_LEFT`), and asks waiting
 * for its answer wait for it no more: silent, it cost the next two /health checks their whole
 * second and the next two scrapes two (a scale-in review, 2026-12-06). An instance killed says
 * nothing and is given up on as before. For as long as the connection lasts; once per bus.
 */
export function forgetLeavers(bus: Bus): void {
  if (following.has(bus)) return;
  following.add(bus);
  bus.nc.subscribe(bus.subject(INSTANCE_LEFT), {
    callback: (_error, msg) => {
      const left = leaverOf(msg);
      if (!left) return;
      const key = `${bus.prefix}/${left.name}`;
      seen.get(key)?.delete(left.id);
      for (const told of asking.get(key) ?? []) told(left.id);
    },
  });
}

/** The instance a leaving notice names, if it names one (read as discovery answers are). */
function leaverOf(msg: Msg): { name: string; id: string } | undefined {
  const { name, id } = identityOf(msg) ?? {};
  return typeof name === "string" && typeof id === "string" ? { name, id } : undefined;
}

/** The longest window any caller asks for: entries older than this are forgotten. */
const LONGEST_RECENT_MS = 600_000;

/**
 * What is known of each instance of `key` (the map kept for all callers), and the ones an ask of
 * `verb` with the window `recentMs` waits for: answered within it, and not given up on. Callers
 * with different windows share it: pruned to a caller's own window, /health (10 s) made /metrics
 * (180 s) forget what it waits for (found by a review). `onlyGivenUp`: instances are known, and
 * every one of them was given up on; one known and not given up on, if silent since before the
 * window, is waited for as by a gateway that knows no instance yet, until the first answer (a
 * dashboard polling less often than the window saw the service missing after a rolling restart
 * whenever its new instance answered after the tail: a review).
 */
function recentlySeen(
  key: string,
  verb: Verb,
  window: { recentMs: number; now: number },
): { all: Map<string, Sighting>; expected: Set<string>; givenUp: string[]; onlyGivenUp: boolean } {
  const all = seen.get(key) ?? new Map<string, Sighting>();
  seen.set(key, all);
  const { recentMs, now } = window;
  const expected = new Set<string>();
  const givenUp: string[] = [];
  for (const [id, { at, misses }] of all) {
    const given = (misses[verb]?.count ?? 0) >= MISSES_BEFORE_GIVING_UP;
    if (now - at > LONGEST_RECENT_MS) all.delete(id);
    else if (given) givenUp.push(id);
    else if (now - at <= recentMs) expected.add(id);
  }
  return { all, expected, givenUp, onlyGivenUp: givenUp.length > 0 && givenUp.length === all.size };
}

/**
 * Charges a miss of `verb` to each known instance not given up on that did not answer an ask begun
 * at `askedAt` that ran to its cap, whether the ask waited for it or not (one silent since before
 * the window made every ask wait its cap while nothing else answered: an operator review); but
 * not when an ask that overlapped this one charged it already:
 * they heard the same silence (two /health checks at once, or two Prometheus servers, counted one
 * stall of a busy instance twice and gave up on it: a review).
 */
function chargeMisses(
  all: Map<string, Sighting>,
  verb: Verb,
  answered: Map<string, unknown>,
  askedAt: number,
): void {
  const now = performance.now();
  for (const [id, sighting] of all) {
    if (answered.has(id)) continue;
    const last = sighting.misses[verb];
    if ((last?.count ?? 0) >= MISSES_BEFORE_GIVING_UP || (last && last.at >= askedAt)) continue;
    sighting.misses[verb] = { count: (last?.count ?? 0) + 1, at: now };
  }
}

/** Records that instance `id` answered at `at`: alive, no misses. */
function sighted(all: Map<string, Sighting>, id: string, at: number): void {
  all.set(id, { at, misses: {} });
}

/** What a subject token may be here: a NATS nuid's characters (shared/bus.ts's instance ids). */
const PLAIN_TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Pings each of `ids` (instances given up on) by its own subject (`$SRV.PING.<name>.<id>`, as
 * shared/bus.ts serves it; a ping for a scrape's STATS too, whose answer is dearer: only the
 * subscription matters here): `onGone(id)` for each NATS says nobody serves any more, one killed
 * rather than frozen (a frozen one keeps its subscription, and stays silent). Given up on and
 * forgotten by no check in between, a killed instance left its replacement only the tail (a
 * liveness probe's restart of a frozen instance: /health named the service missing; a review).
 */
function askGivenUp(
  bus: Bus,
  name: string,
  ids: string[],
  options: { maxWaitMs: number; onGone: (id: string) => void },
): void {
  // An id is a token of the instance's own choosing: one that is no plain subject token
  // (`.`, `*`, `>`, space) is not asked, and stays given up on.
  for (const id of ids.filter((id) => PLAIN_TOKEN.test(id))) {
    const inbox = bus.newInbox();
    const sub = bus.nc.subscribe(inbox, {
      max: 1,
      callback: (_error, msg) => {
        clearTimeout(cap);
        if (msg.headers?.code === 503) options.onGone(id);
      },
    });
    const cap = setTimeout(() => sub.unsubscribe(), options.maxWaitMs);
    bus.nc.publish(`$SRV.PING.${name}.${id}`, undefined, { reply: inbox });
  }
}

/**
 * Asks the instances of `known` given up on by id (`askGivenUp`), forgets each NATS says is gone,
 * and calls `allGone` once none is left: then the first answer is waited for, as by a gateway that
 * knows no instance yet (the tail alone named a restarted service missing).
 */
function whenAllGone(
  bus: Bus,
  name: string,
  known: { all: Map<string, Sighting>; givenUp: string[] },
  maxWaitMs: number,
  allGone: () => void,
): void {
  let left = known.givenUp.length;
  askGivenUp(bus, name, known.givenUp, {
    maxWaitMs,
    onGone: (id) => {
      known.all.delete(id);
      if (--left === 0) allGone();
    },
  });
}

/** How long `askInstances` waits, and for which instances. */
export interface AskOptions {
  /** Longest wait for the answers (default MAX_WAIT_MS). */
  maxWaitMs?: number;
  /** Instances that answered within this long are waited for (default RECENT_MS). */
  recentMs?: number;
  /** After every instance waited for answered, how long more may take (default TAIL_MS). */
  tailMs?: number;
  /**
   * The clock `recentMs` is measured by (default `Date.now`): a test's own lets a window pass
   * without waiting it out. Asks of one prefix and service share what they saw: give them one.
   */
  now?: () => number;
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
 *
 * The ask listens until its cap even after it delivered: an instance no longer waited for that
 * answers after the tail is seen alive, and waited for again by the next ask (it was never
 * recorded again, so a busy instance, once given up on, stayed out: a review). Only an ask that
 * waited its whole cap heard a silence; not while this gateway itself has lost NATS. One told
 * that nobody listens heard that the instances are gone (a frozen one keeps its subscriptions),
 * and forgets them all, whichever verb saw them: every instance answers both while it runs. Given
 * up on instead, a lost one left its replacement (a new id) only the tail, and a real ping waits
 * for a database probe: /health said the service missing (a review); kept when the other verb
 * alone had seen it, it made the first ask after a restart wait its cap.
 */
export function askInstances<T extends Answer = ServiceIdentity>(
  bus: Bus,
  verb: Verb,
  name: string,
  options: AskOptions = {},
): Promise<Map<string, T>> {
  const { maxWaitMs = MAX_WAIT_MS, recentMs = RECENT_MS, tailMs = TAIL_MS } = options;
  const { now = Date.now } = options;
  // performance.now(): an ask begun in the millisecond the one before it charged its misses is
  // not one that overlapped it.
  const askedAt = performance.now();
  const key = `${bus.prefix}/${name}`;
  const known = recentlySeen(key, verb, { recentMs, now: now() });
  return collectAnswers<T>(bus, { verb, name, key, known, askedAt }, { maxWaitMs, tailMs, now });
}

/** One ask of `askInstances`: what it asks, and what it knew of the instances when it began. */
interface Ask {
  verb: Verb;
  name: string;
  /** The key of what is known of the instances (`recentlySeen`). */
  key: string;
  known: ReturnType<typeof recentlySeen>;
  /** `performance.now()` when it began. */
  askedAt: number;
}

/** Sends `ask` and gives the answers heard, as `askInstances` says. */
function collectAnswers<T extends Answer>(
  bus: Bus,
  { verb, name, key, known, askedAt }: Ask,
  { maxWaitMs, tailMs, now }: Required<Pick<AskOptions, "maxWaitMs" | "tailMs" | "now">>,
): Promise<Map<string, T>> {
  const answers = new Map<string, T>();
  const inbox = bus.newInbox();
  return new Promise((resolve) => {
    let tail: ReturnType<typeof setTimeout> | undefined;
    let delivered = false;
    const deliver = () => {
      if (delivered) return;
      delivered = true;
      clearTimeout(tail);
      stopHearingLeavers();
      resolve(new Map(answers));
    };
    // Every instance waited for answered (by id: a new one does not stand in for one still
    // waited for): new ones have the tail to answer too.
    const tailOnceAllAnswered = () => {
      if (delivered || ![...known.expected].every((id) => answers.has(id))) return;
      clearTimeout(tail);
      tail = setTimeout(deliver, tailMs);
    };
    // One that left while waited for is waited for no more (`forgetLeavers`).
    const stopHearingLeavers = onLeaving(key, (id) => {
      if (known.expected.delete(id) && !answers.has(id)) tailOnceAllAnswered();
    });
    // Listens until its cap even after it delivered (see above); only then heard a silence.
    const end = (nobodyListens: boolean) => {
      clearTimeout(cap);
      sub.unsubscribe();
      if (nobodyListens) known.all.clear(); // whichever verb saw them (see above)
      else if (!bus.reconnecting) chargeMisses(known.all, verb, answers, askedAt);
      deliver();
    };
    const cap = setTimeout(() => end(false), maxWaitMs);
    // Every instance known given up on: those the tail hears are all there is (a frozen only
    // instance made every ask wait its cap for as long as it stayed frozen).
    if (known.onlyGivenUp) {
      tail = setTimeout(deliver, tailMs);
      whenAllGone(bus, name, known, maxWaitMs, () => {
        if (!delivered && answers.size === 0) clearTimeout(tail);
      });
    }
    const sub = bus.nc.subscribe(inbox, {
      callback: (_error, msg) => {
        // 503: nobody listens on the subject at all.
        if (msg.headers?.code === 503) return end(true);
        const identity = answerOnPrefix<T>(msg, bus, name);
        if (!identity) return;
        answers.set(identity.id, identity);
        sighted(known.all, identity.id, now());
        tailOnceAllAnswered();
      },
    });
    bus.nc.publish(`$SRV.${verb}.${name}`, undefined, { reply: inbox });
  });
}

/** Tells `told` the id of each instance of `key` that leaves, until the function returned is run. */
function onLeaving(key: string, told: (id: string) => void): () => void {
  const waiting = asking.get(key) ?? new Set();
  asking.set(key, waiting.add(told));
  return () => {
    if (waiting.delete(told) && !waiting.size) asking.delete(key);
  };
}

/**
 * The other bus prefixes instances of each service answered under, remembered for a while: where a
 * service is missing under this gateway's prefix, they hint that the gateway or the services were
 * given another BUS_PREFIX (an operator review, 2026-12-06: `/health` named every service missing,
 * and nothing said that they all answered under another prefix). Said in the log only: `/health`
 * is public, and the prefixes are other systems' business.
 */
const otherPrefixes = new Map<string, Map<string, number>>();
/** At most this many other prefixes are remembered per service. */
const OTHER_PREFIXES_KEPT = 8;

/**
 * The answer `msg` carries when it is from this bus prefix; one from another is remembered
 * (`heardUnderAnotherPrefix`), and undefined.
 */
function answerOnPrefix<T extends Answer>(msg: Msg, bus: Bus, name: string): T | undefined {
  const identity = identityOf(msg) as T | undefined;
  if (identity?.metadata?.prefix === bus.prefix) return identity;
  heardUnderAnotherPrefix(name, identity?.metadata?.prefix);
  return undefined;
}

function heardUnderAnotherPrefix(name: string, prefix: unknown): void {
  if (typeof prefix !== "string") return;
  const heard = otherPrefixes.get(name) ?? new Map<string, number>();
  otherPrefixes.set(name, heard);
  if (heard.size < OTHER_PREFIXES_KEPT || heard.has(prefix)) heard.set(prefix, Date.now());
}

/** The other prefixes `name` answered under in the last RECENT_MS. */
function prefixesHeard(name: string): string[] {
  const heard = otherPrefixes.get(name) ?? new Map<string, number>();
  for (const [prefix, at] of heard) if (Date.now() - at > RECENT_MS) heard.delete(prefix);
  return [...heard.keys()];
}

/** How often, at most, a missing service answering under another prefix is logged. */
const PREFIX_HINT_INTERVAL_MS = 60_000;

/** Logs, once a minute at most, which missing services answer under another bus prefix. */
export class PrefixHint {
  readonly #log: Logger;
  readonly #said = new LinePace(PREFIX_HINT_INTERVAL_MS);

  constructor(log: Logger) {
    this.#log = log;
  }

  say(bus: Bus, missing: string[]): void {
    const elsewhere = Object.fromEntries(
      missing.map((name) => [name, prefixesHeard(name)]).filter(([, heard]) => heard.length),
    );
    if (!Object.keys(elsewhere).length) return;
    if (!this.#said.due()) return;
    this.#log.warn(
      "services missing under this gateway's BUS_PREFIX answer under another: check BUS_PREFIX",
      { prefix: bus.prefix, elsewhere },
    );
  }
}

/**
 * Pings `$SRV.PING.<name>` and counts the distinct instances on this prefix that answer (`now`:
 * see AskOptions).
 */
export async function countInstances(
  bus: Bus,
  name: string,
  options: Pick<AskOptions, "now"> & { signing?: string } = {},
): Promise<InstanceCount> {
  const answers = await askInstances(bus, "PING", name, options);
  const problems = new Map(
    [...answers].map(([id, answer]) => [id, [
      ...answer.problems ?? [],
      ...signsOtherwise(answer, options.signing) ? [OTHER_SECRET] : [],
    ]]),
  );
  return countOf(problems);
}

/** The problem of a catalog instance that signs tokens with another secret than this gateway's. */
const OTHER_SECRET = "it signs tokens with another JWT_SECRET than this gateway verifies with: " +
  "every signed-in request answers 401; give the gateway and the catalog the same JWT_SECRET";

/**
 * Whether `answer` tells a JWT_SECRET fingerprint (the catalog's instances do) other than
 * `signing`, this gateway's (shared/secret_fingerprint.ts).
 */
function signsOtherwise(answer: ServiceIdentity, signing: string | undefined): boolean {
  const theirs = answer.metadata?.[JWT_SECRET_METADATA];
  return signing !== undefined && theirs !== undefined && theirs !== signing;
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
export async function checkHealth(
  bus: Bus,
  services: readonly string[],
  options: { signing?: string; hint?: PrefixHint } = {},
): Promise<HealthReport> {
  // Without NATS no instance can answer: the pings would name every service missing after a
  // second's wait, and the operator would look for four outages instead of one.
  if (bus.reconnecting) {
    return { status: "unavailable", services: {}, problems: [NATS_LOST] };
  }
  const counts = await Promise.all(
    services.map((name) => countInstances(bus, name, options).catch(() => none)),
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
  if (missing.length) {
    report.missing = missing;
    options.hint?.say(bus, missing);
  }
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
export function health(
  options: { bus: Bus; services: readonly string[]; jwtSecret?: string; log?: Logger },
): Handler<GatewayEnv> {
  const { bus, services, jwtSecret, log } = options;
  const signing = jwtSecret === undefined ? undefined : secretFingerprint(jwtSecret);
  const hint = log && new PrefixHint(log);
  return async function healthHandler(c) {
    const report = await checkHealth(bus, services, { signing, hint });
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
