import assert from "node:assert/strict";
import { TaggedEntries, type TaggedEntry } from "./tagged_entries.ts";

function setUp(memoryMs = 30_000) {
  let now = 1_000_000;
  const removed: string[] = [];
  const entries = new TaggedEntries<TaggedEntry>({
    memoryMs,
    onRemove: (entry) => removed.push(entry.key),
    now: () => now,
  });
  return { entries, removed, advance: (ms: number) => (now += ms), now: () => now };
}

Deno.test("[tagged] a change drops the entries of its tags and tells the owner", () => {
  const { entries, removed, now } = setUp();
  entries.add({ key: "a", tags: ["event:1", "events"], until: now() + 1_000 });
  entries.add({ key: "b", tags: ["event:2"], until: now() + 1_000 });
  entries.change(["events"], 0);
  assert.equal(entries.get("a"), undefined);
  assert.ok(entries.get("b"));
  assert.deepEqual(removed, ["a"]);
});

Deno.test("[tagged] a fetch that a change or an emptying overtook is not fresh", () => {
  const { entries } = setUp();
  const began = entries.begin();
  entries.change(["event:1"], 0);
  assert.equal(entries.fresh(["event:1"], began), false, "its tag changed after it began");
  assert.equal(entries.fresh(["event:2"], began), true, "another tag's change does not matter");
  entries.clear();
  assert.equal(entries.fresh(["event:2"], began), false, "emptied after it began");
  assert.equal(entries.fresh(["event:2"], entries.begin()), true);
  entries.suspend(true);
  assert.equal(
    entries.fresh(["event:2"], entries.begin()),
    false,
    "nothing stored while suspended",
  );
});

Deno.test("[tagged] a settle time cuts short what is stored during it", () => {
  const { entries, advance, now } = setUp();
  entries.change(["event:1"], 1_000);
  advance(400);
  assert.equal(entries.settled(["event:1"], now() + 60_000), now() + 600);
  assert.equal(entries.settled(["event:2"], now() + 60_000), now() + 60_000);
  advance(600);
  assert.equal(entries.settled(["event:1"], now() + 60_000), now() + 60_000, "settled by now");
});

Deno.test("[tagged] forgetting an old change raises the floor for fetches that old", () => {
  const { entries, advance } = setUp(1_000);
  const old = entries.begin();
  entries.change(["event:1"], 0);
  advance(1_500);
  entries.change(["event:2"], 0); // forgets the change of event:1
  assert.equal(entries.fresh(["event:3"], old), false, "it may have missed the forgotten change");
});

Deno.test("[tagged] an expired entry is removed when asked for; order follows renew", () => {
  const { entries, removed, advance, now } = setUp();
  entries.add({ key: "a", tags: [], until: now() + 100 });
  entries.add({ key: "b", tags: [], until: now() + 1_000 });
  entries.renew(entries.get("a")!);
  assert.equal(entries.first()?.key, "b");
  advance(100);
  assert.equal(entries.get("a"), undefined);
  assert.deepEqual(removed, ["a"]);
});
