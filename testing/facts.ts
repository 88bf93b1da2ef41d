/**
 * Facts for tests: a valid fact of any registered type (its registry example, with overrides),
 * publishing facts on their own subjects as the relay would, and reading back what a stream
 * holds.
 */
import { jetstream, jetstreamManager, type StoredMsg } from "@nats-io/jetstream";
import type { Bus } from "@shared/bus.ts";
import { type FactData, FACTS, type FactType } from "@shared/fact_catalog.ts";
import { factSubject } from "@shared/fact_names.ts";
import { buildFact, type Fact, type FactActor, parseFact } from "@shared/facts.ts";
import { facts } from "@shared/subjects.ts";
import type { JsonBody } from "./json.ts";

/** A fact as tests read it: typed, with `data` open to any key (tests look up fields freely). */
export type TestFact = Fact & { data: Record<string, JsonBody> };

/** A valid fact of `type`: the registry's example payload with `data` laid over it. */
export function exampleFact<K extends FactType>(
  type: K,
  data: Partial<FactData<K>> = {},
  options: { actor?: FactActor; time?: Date; changed?: string[]; purged?: boolean } = {},
): Fact<K> {
  const { actor = null, time, changed, purged } = options;
  const payload = { ...FACTS[type].example, ...data } as Record<string, unknown>;
  return buildFact({ type, actor, data: payload, changed, purged }, time);
}

/** Publishes facts (or any bodies with a `type`) on their subjects, with their ids as msgID. */
export async function publishFacts(
  bus: Bus,
  list: { id: string; type: string }[],
): Promise<void> {
  const js = jetstream(await bus.jetStreamConnection());
  for (let i = 0; i < list.length; i += 1000) {
    await Promise.all(
      list.slice(i, i + 1000).map((fact) =>
        js.publish(
          bus.subject(factSubject(fact.type)),
          JSON.stringify(fact),
          { msgID: fact.id },
        )
      ),
    );
  }
}

/** Every message `stream` holds, oldest first (deleted ones skipped), read one by one. */
export async function storedMessages(bus: Bus, stream: string): Promise<StoredMsg[]> {
  const jsm = await jetstreamManager(await bus.jetStreamConnection());
  const { state } = await jsm.streams.info(stream);
  const out: StoredMsg[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const message = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (message) out.push(message);
  }
  return out;
}

/**
 * Every fact on `bus`'s fact stream, each checked against its registered schema: one that breaks
 * its contract fails the test.
 */
export async function readFacts(bus: Bus): Promise<TestFact[]> {
  const messages = await storedMessages(bus, facts.stream(bus.prefix));
  return messages.map((message) => {
    const read = parseFact(message.json());
    if (!("fact" in read)) {
      throw new Error(`Fact ${message.seq} breaks its contract: ${read.reason}`);
    }
    return read.fact as TestFact;
  });
}
