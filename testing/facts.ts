/**
 * Facts for tests: a valid fact of any registered type (its registry example, with overrides),
 * and publishing facts on their own subjects as the relay would.
 */
import { jetstream } from "@nats-io/jetstream";
import type { Bus } from "@shared/bus.ts";
import { type FactData, FACTS, factSubject, type FactType } from "@shared/fact_catalog.ts";
import { buildFact, type Fact, type FactActor } from "@shared/facts.ts";

/** A valid fact of `type`: the registry's example payload with `data` laid over it. */
export function exampleFact<K extends FactType>(
  type: K,
  data: Partial<FactData<K>> = {},
  options: { actor?: FactActor; time?: Date } = {},
): Fact<K> {
  const payload = { ...FACTS[type].example, ...data } as Record<string, unknown>;
  return buildFact({ type, actor: options.actor ?? null, data: payload }, options.time);
}

/** Publishes facts (or any bodies with a `type`) on their subjects, with their ids as msgID. */
export async function publishFacts(
  bus: Bus,
  list: { id: string; type: string }[],
  options: { subject?: string } = {},
): Promise<void> {
  const js = jetstream(bus.nc);
  for (let i = 0; i < list.length; i += 1000) {
    await Promise.all(
      list.slice(i, i + 1000).map((fact) =>
        js.publish(
          bus.subject(options.subject ?? factSubject(fact.type)),
          JSON.stringify(fact),
          { msgID: fact.id },
        )
      ),
    );
  }
}
