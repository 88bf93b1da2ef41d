/**
 * A complete small subscriber: it follows the catalog's event facts and prints one line per
 * event created, changed, restored from the trash, trashed or purged. The README quotes this
 * file; examples/subscriber_test.ts runs it against a live stream.
 *
 * Run: `NATS_URL=nats://127.0.0.1:4222 BUS_PREFIX=oe START=all deno run -A examples/subscriber.ts`
 * (START: `all` replays the whole stream, `new` waits for new facts, an ISO time starts there).
 */
import { Bus } from "@shared/bus.ts";
import { byType, consumeFacts, type FactStart } from "@shared/consumer.ts";
import { type Fact, factActor, factChanged } from "@shared/facts.ts";
import { createLogger } from "@shared/log.ts";

/** "by ada@example.com" or "by the system". */
function by(fact: Fact): string {
  return `by ${factActor(fact)?.email ?? "the system"}`;
}

function startFrom(text = "all"): FactStart {
  return text === "all" || text === "new" ? text : new Date(text);
}

const log = createLogger("event-printer", "warn");
const bus = await Bus.connect({
  url: Deno.env.get("NATS_URL") ?? "nats://127.0.0.1:4222",
  prefix: Deno.env.get("BUS_PREFIX") ?? "oe",
  name: "event-printer",
  logger: log,
});
const consumer = await consumeFacts(bus, {
  // No durable name: a replay that the server forgets once we stop. Give one (shared by every
  // instance) to resume where you left off after a restart.
  subject: "facts.catalog.event.>",
  start: startFrom(Deno.env.get("START")),
  // The services of this prefix own its streams: bind to theirs, make and change none.
  bindStreams: true,
  log,
  // Each handler's `fact.data` is typed by the registry (shared/fact_catalog.ts). A fact can
  // arrive twice: real handlers are idempotent on `fact.id`.
  handle: byType({
    "catalog.event.created": (fact) => {
      console.log(`created ${fact.data.id} "${fact.data.name}" (${fact.data.state}) ${by(fact)}`);
    },
    "catalog.event.updated": (fact) => {
      // `changed` names what the update altered; absent, compare with your copy of the row.
      const changed = factChanged(fact);
      const restored = changed.includes("deleted-at") && fact.data["deleted-at"] === null;
      const what = restored ? "restored" : "updated";
      const names = changed.length ? ` [${changed.join(", ")}]` : "";
      console.log(
        `${what} ${fact.data.id} "${fact.data.name}" (${fact.data.state})${names} ${by(fact)}`,
      );
    },
    "catalog.event.deleted": (fact) => {
      // A soft delete keeps the row in the trash (an admin may restore it); a purge is final.
      if (fact.purged) console.log(`purged ${fact.data.id} ${by(fact)}`);
      else console.log(`trashed ${fact.data.id} at ${fact.data["deleted-at"]} ${by(fact)}`);
    },
  }),
});
console.log("listening");

// On SIGTERM or SIGINT: finish the batch in hand, then leave.
const stop = async () => {
  await consumer.stop();
  await bus.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
