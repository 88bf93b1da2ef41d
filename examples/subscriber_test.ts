import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { deleteFactStream, ensureFactStream } from "@shared/fact_streams.ts";
import { ensureParkedStream } from "@shared/fact_parking.ts";
import { facts } from "@shared/subjects.ts";
import { testBus } from "@shared/testing.ts";
import { exampleFact, publishFacts } from "@testing/facts.ts";

const ada = { id: "4", email: "ada@example.com" };

/** Reads the child's stdout line by line until `count` lines matched, or fails after `ms`. */
async function linesUntil(
  reader: ReadableStreamDefaultReader<string>,
  seen: string[],
  done: () => boolean,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  let buffer = "";
  while (!done()) {
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new Error(`Cannot wait longer: the subscriber printed ${seen.join(" | ")}`);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Cannot wait longer: got ${seen}`)), left);
    });
    const { value, done: ended } = await Promise.race([reader.read(), timeout]).finally(() =>
      clearTimeout(timer)
    );
    if (ended) throw new Error(`The subscriber exited early; it printed ${seen.join(" | ")}`);
    buffer += value;
    const lines = buffer.split("\n");
    buffer = lines.pop()!;
    seen.push(...lines.filter(Boolean));
  }
}

/** Runs examples/subscriber.ts on the test bus, replaying from the start; stdout piped. */
function runSubscriber(
  b: { natsUrl: string; prefix: string },
  stderr: "inherit" | "piped",
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./subscriber.ts", import.meta.url).pathname],
    // From the repository root, so deno.json's import map applies.
    cwd: new URL("..", import.meta.url).pathname,
    env: { NATS_URL: b.natsUrl, BUS_PREFIX: b.prefix, START: "all" },
    stdout: "piped",
    stderr,
  }).spawn();
}

Deno.test("[examples] the README's subscriber replays the stream and prints new event facts", async () => {
  await using b = await testBus();
  // The streams the services of a prefix make at start; the subscriber binds to both.
  await ensureFactStream(b.bus);
  await ensureParkedStream(b.bus);
  try {
    await publishFacts(b.bus, [
      exampleFact("catalog.event.created", { id: "5", name: "Summit", state: "draft" }, {
        actor: ada,
      }),
      // Not an event fact: the subscriber's subject filter leaves it out.
      exampleFact("catalog.event-topic.created", { id: "2" }),
      exampleFact("catalog.event.updated", { id: "5", name: "Summit", state: "published" }, {
        actor: ada,
        changed: ["state"],
      }),
      exampleFact("catalog.event.deleted", {
        id: "5",
        "deleted-at": "2030-05-02T10:00:00.000Z",
      }),
      exampleFact("catalog.event.updated", { id: "5", name: "Summit", "deleted-at": null }, {
        actor: ada,
        changed: ["deleted-at"],
      }),
    ]);
    const child = runSubscriber(b, "inherit");
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const seen: string[] = [];
    try {
      await linesUntil(reader, seen, () => seen.length >= 5, 20_000);
      // Published while it runs: delivered too.
      await publishFacts(b.bus, [
        exampleFact("catalog.event.deleted", { id: "5", "deleted-at": null }, { purged: true }),
      ]);
      await linesUntil(reader, seen, () => seen.length >= 6);
      assert.ok(seen.includes("listening"));
      // In stream order; "listening" may come before or after the replay starts.
      assert.deepEqual(seen.filter((line) => line !== "listening"), [
        'created 5 "Summit" (draft) by ada@example.com',
        'updated 5 "Summit" (published) [state] by ada@example.com',
        "trashed 5 at 2030-05-02T10:00:00.000Z by the system",
        'restored 5 "Summit" (published) [deleted-at] by ada@example.com',
        "purged 5 by the system",
      ]);
    } finally {
      child.kill("SIGTERM");
      reader.releaseLock();
      await child.stdout.cancel().catch(() => {});
    }
    const status = await child.status;
    assert.equal(status.code, 0, "it stops cleanly on SIGTERM");
  } finally {
    await deleteFactStream(b.bus);
  }
});

Deno.test("[examples] the README's subscriber makes no stream for a prefix nobody publishes on", async () => {
  await using b = await testBus();
  const child = runSubscriber(b, "piped");
  // Killed after 15 s should it wait instead (the defect: it made both streams and listened).
  const bound = setTimeout(() => child.kill("SIGTERM"), 15_000);
  try {
    const { code, stderr } = await child.output();
    assert.notEqual(code, 0, "it fails to start");
    assert.match(new TextDecoder().decode(stderr), /Cannot bind to stream .*: it does not exist/);
    const jsm = await jetstreamManager(b.bus.nc);
    const streams = await jsm.streams.names().next();
    const ours = [facts.stream(b.prefix), facts.parkedStream(b.prefix)];
    assert.deepEqual(streams.filter((name) => ours.includes(name)), [], "no stream made");
  } finally {
    clearTimeout(bound);
    await deleteFactStream(b.bus);
  }
});

Deno.test("[examples] the README quotes examples/subscriber.ts as it is", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const example = await Deno.readTextFile(new URL("./subscriber.ts", import.meta.url));
  assert.ok(
    readme.includes("```ts\n" + example + "```"),
    "README.md's subscriber differs from examples/subscriber.ts: quote the file again",
  );
});
