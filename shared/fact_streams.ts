/**
 * The JetStream streams facts live in: the fact stream of a bus prefix (every fact, kept a year,
 * de-duplicated by fact id) and the streams a service manages beside it (the parked stream), made
 * or brought to their settings at start (`ensureStream`), and removed by tests.
 */
import {
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  type StreamInfo,
} from "@nats-io/jetstream";
import { errors as natsErrors } from "@nats-io/nats-core";
import type { Bus } from "./bus.ts";
import { causeChain } from "./bus_replies.ts";
import { facts } from "./subjects.ts";

/** Creates (or updates) the stream that keeps every fact of this bus prefix; returns its name. */
export async function ensureFactStream(bus: Bus): Promise<string> {
  return (await openFactStream(bus)).config.name;
}

/**
 * Creates (or updates) the fact stream and returns its info as the server answered the change.
 * Asked for again right away, a cluster may answer "stream not found": a member that has not made
 * the stream yet (or a meta leader behind on the change) answers for it while the stream has no
 * leader, and the first answer wins (a consumer start failed so once on a loaded CI).
 */
export async function openFactStream(bus: Bus): Promise<StreamInfo> {
  return await ensureStream(bus, {
    name: facts.stream(bus.prefix),
    subjects: [bus.subject(facts.all)],
    num_replicas: bus.factsReplicas,
    // An audit trail: keep a year, de-duplicate re-publishes for ten minutes.
    max_age: 365 * 24 * 3600 * 1e9,
    duplicate_window: 10 * 60 * 1e9,
  });
}

/** The stream settings we manage; everything else keeps the server's defaults. */
export interface ManagedStream {
  name: string;
  subjects: string[];
  num_replicas: number;
  max_age?: number;
  duplicate_window?: number;
}

export function isStreamNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
}

function differs(current: Record<string, unknown>, wanted: ManagedStream): boolean {
  return Object.entries(wanted).some(([key, value]) =>
    JSON.stringify(current[key]) !== JSON.stringify(value)
  );
}

/**
 * Creates a stream, or brings an existing one to `wanted` (replicas included: raising
 * FACTS_REPLICAS on a running cluster scales the stream at the next start). Instances starting
 * together may race; the loser finds the stream made. Returns the stream's info from the
 * server's answer to the change (see `openFactStream` for why not from another request).
 */
export async function ensureStream(bus: Bus, wanted: ManagedStream): Promise<StreamInfo> {
  // A cluster that is forming or electing answers late or not at all for a few seconds (an R3
  // stream needs a quorum): retry for a while instead of failing the process's start-up. Any
  // failure but a name taken, so not for long: a refusal (3 replicas on one node) is reported
  // only once this is over.
  return await whileSettling(
    () => ensureStreamOnce(bus, wanted),
    (error) => !(error instanceof StreamNameTakenError),
    ENSURE_STREAM_PATIENCE_MS,
  );
}

const ENSURE_STREAM_PATIENCE_MS = 15_000;

/**
 * How long a start waits out the answers `isClusterSettling` recognises (none of them a
 * refusal). A cluster that regains a quorum elects its leader up to ~10 s later (a Raft election
 * timeout of 4 to 9 s; 10 s seen in testing/bus_nodes_test.ts), so 15 s covered a loss of a few
 * seconds at most.
 */
const SETTLE_PATIENCE_MS = 30_000;

/**
 * `attempt`, tried again after growing pauses (0.1 s doubling to 1 s) while it fails in a way
 * `settling` calls a cluster settling, for `patienceMs` at most; any other failure, or one past
 * that, is thrown.
 */
export async function whileSettling<T>(
  attempt: () => Promise<T>,
  settling: (error: unknown) => boolean,
  patienceMs = SETTLE_PATIENCE_MS,
): Promise<T> {
  const giveUpAt = Date.now() + patienceMs;
  for (let pause = 100;; pause = Math.min(pause * 2, 1000)) {
    try {
      return await attempt();
    } catch (error) {
      if (!settling(error) || Date.now() + pause > giveUpAt) throw error;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/**
 * JetStream's answers while a cluster settles: no meta leader (10008 "JetStream system
 * temporarily unavailable", or none at all: a timeout), a server that cannot take the request now
 * (10009, 10007), a stream without a leader (10118 "stream is offline"), and "stream not found"
 * from a meta leader that has not applied a stream's creation yet (its member answered it made).
 */
const SETTLING_CODES = new Set([10007, 10008, 10009, 10118, JetStreamApiCodes.StreamNotFound]);

/**
 * Whether a failed request about a stream that was just made or checked (a consumer's creation
 * on it) is the cluster settling, worth asking again for a while, rather than a refusal.
 */
export function isClusterSettling(error: unknown): boolean {
  if (error instanceof JetStreamApiError) return SETTLING_CODES.has(error.code);
  return error instanceof natsErrors.TimeoutError;
}

/** Thrown when the stream of this prefix's name holds another prefix's subjects. */
export class StreamNameTakenError extends Error {}

/**
 * Refuses a stream of our name that holds other subjects: our subjects never change for a
 * prefix, so it is another prefix's whose name maps to the same one (`oe.eu` and `oe_eu`, `oe`
 * and `OE`). Taking it over (replacing its subjects) left that system's facts without a stream.
 */
function checkOwnStream(config: { subjects?: string[] }, wanted: ManagedStream, bus: Bus): void {
  const subjects = config.subjects ?? [];
  if (JSON.stringify(subjects) === JSON.stringify(wanted.subjects)) return;
  throw new StreamNameTakenError(
    `Cannot use stream ${wanted.name} for bus prefix "${bus.prefix}": it holds ` +
      `${subjects.join(", ") || "no subjects"}, another prefix's that maps to the same name; ` +
      "choose a BUS_PREFIX that differs in more than case and punctuation",
  );
}

async function ensureStreamOnce(bus: Bus, wanted: ManagedStream): Promise<StreamInfo> {
  const jsm = await jetstreamManager(await bus.jetStreamConnection());
  const found = await jsm.streams.info(wanted.name).catch((error) => {
    if (isStreamNotFound(error)) return null;
    throw error;
  });
  // "Not found" may come from a member that has not made the stream yet (see openFactStream):
  // adding it then fails for other settings, and what is there is reconciled all the same (it was
  // left as found, a FACTS_REPLICAS raised at such a start applied only at the next one).
  const info = found ?? await jsm.streams.add(wanted).catch(async (error) => {
    const made = await jsm.streams.info(wanted.name).catch(() => null);
    if (!made) throw error;
    return made;
  });
  checkOwnStream(info.config, wanted, bus);
  const current = info.config as unknown as Record<string, unknown>;
  if (!differs(current, wanted)) return info;
  // Said, since processes of one system with different FACTS_REPLICAS turn a shared stream back
  // and forth at each start: until 2026-12-06 an instance started without it took a stream of 3
  // replicas down to 1 without a word, at any level (an operator review).
  bus.log.warn("changing a stream's settings to this process's", {
    stream: wanted.name,
    changes: changesOf(current, wanted),
    hint: "every process of a system should have the same FACTS_REPLICAS",
  });
  return await jsm.streams.update(wanted.name, wanted).catch((error) => {
    if (!causeChain(error).some((e) => e instanceof natsErrors.PermissionViolationError)) {
      throw error;
    }
    // A NATS user per process may make streams, never change them (shared/nats_permissions.ts):
    // the stream stays as it is until an operator changes it.
    bus.log.warn("cannot change a stream's settings: this process's NATS user may not", {
      stream: wanted.name,
      hint: `an operator changes them (nats stream edit ${wanted.name})`,
    });
    return info;
  });
}

/** The settings of `wanted` that `current` has otherwise: `{ num_replicas: "3 -> 1" }`. */
function changesOf(
  current: Record<string, unknown>,
  wanted: ManagedStream,
): Record<string, string> {
  const changes: Record<string, string> = {};
  for (const [key, value] of Object.entries(wanted)) {
    const before = JSON.stringify(current[key]);
    if (before !== JSON.stringify(value)) changes[key] = `${before} -> ${JSON.stringify(value)}`;
  }
  return changes;
}

/** Removes this prefix's fact stream and parked stream (tests clean up with it). */
export async function deleteFactStream(bus: Bus): Promise<void> {
  const jsm = await jetstreamManager(await bus.jetStreamConnection());
  await jsm.streams.delete(facts.stream(bus.prefix)).catch(() => {});
  await jsm.streams.delete(facts.parkedStream(bus.prefix)).catch(() => {});
}
