import assert from "node:assert/strict";
import { GatewayTimeoutError } from "@shared/errors.ts";
import { ResponseCache } from "./cache.ts";
import { Coalescer, type SharedReply } from "./coalesce.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function reply(text: string, tags?: string[], status = 200): SharedReply {
  return { status, body: encoder.encode(text), contentType: "t", tags, shared: true };
}

/** A fetch the test answers by hand, counting how often the coalescer starts one. */
function manualFetches() {
  const pending: { began: number; answer: (r: SharedReply) => void; fail: (e: Error) => void }[] =
    [];
  return {
    pending,
    run: (began: number) =>
      new Promise<SharedReply>((answer, fail) => pending.push({ began, answer, fail })),
  };
}

const text = (r: SharedReply) => decoder.decode(r.body);
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("[gateway] Coalescer shares one fetch among concurrent misses of a key", async () => {
  const cache = new ResponseCache({ maxBytes: 1 << 20 });
  const coalescer = new Coalescer(cache);
  const fetches = manualFetches();
  const replies = Array.from({ length: 10 }, () => coalescer.fetch("k", fetches.run));
  const other = coalescer.fetch("other", fetches.run);
  assert.equal(fetches.pending.length, 2, "one fetch per key");
  fetches.pending[0].answer(reply("one", ["event:1"]));
  fetches.pending[1].answer(reply("two", ["event:2"]));
  assert.deepEqual((await Promise.all(replies)).map(text), Array(10).fill("one"));
  assert.equal(text(await other), "two");
  assert.equal(coalescer.size, 0, "a finished fetch leaves the table");
  const later = coalescer.fetch("k", fetches.run);
  assert.equal(fetches.pending.length, 3, "a later miss fetches again");
  fetches.pending[2].answer(reply("three", ["event:1"]));
  assert.equal(text(await later), "three");
});

Deno.test("[gateway] Coalescer never hands a request a reply older than a change it came after", async (t) => {
  await t.step("a change to the reply's tags: the late request fetches again", async () => {
    const cache = new ResponseCache({ maxBytes: 1 << 20 });
    const coalescer = new Coalescer(cache);
    const fetches = manualFetches();
    const early = coalescer.fetch("k", fetches.run);
    cache.invalidate(["event:1"]);
    const late = coalescer.fetch("k", fetches.run);
    fetches.pending[0].answer(reply("before the change", ["event:1", "events"]));
    assert.equal(text(await early), "before the change", "it was concurrent with the change");
    await tick();
    assert.equal(fetches.pending.length, 2, "the late request fetched again");
    assert.ok(fetches.pending[1].began > fetches.pending[0].began);
    fetches.pending[1].answer(reply("after the change", ["event:1", "events"]));
    assert.equal(text(await late), "after the change");
  });
  await t.step("a request that is refused joins the next fetch in flight", async () => {
    const cache = new ResponseCache({ maxBytes: 1 << 20 });
    const coalescer = new Coalescer(cache);
    const fetches = manualFetches();
    coalescer.fetch("k", fetches.run);
    cache.invalidate(["event:1"]);
    const late = [coalescer.fetch("k", fetches.run), coalescer.fetch("k", fetches.run)];
    fetches.pending[0].answer(reply("old", ["event:1"]));
    await tick();
    assert.equal(fetches.pending.length, 2, "both refused requests share one new fetch");
    fetches.pending[1].answer(reply("new", ["event:1"]));
    assert.deepEqual((await Promise.all(late)).map(text), ["new", "new"]);
  });
  await t.step("the cache emptied, or an uncacheable reply, count as changed", async () => {
    const cache = new ResponseCache({ maxBytes: 1 << 20 });
    const coalescer = new Coalescer(cache);
    const fetches = manualFetches();
    coalescer.fetch("a", fetches.run);
    coalescer.fetch("b", fetches.run);
    cache.clear();
    const lateA = coalescer.fetch("a", fetches.run);
    cache.invalidate(["unrelated"]);
    const lateB = coalescer.fetch("b", fetches.run);
    fetches.pending[0].answer(reply("old a", ["event:1"]));
    fetches.pending[1].answer(reply("old b"));
    await tick();
    assert.equal(fetches.pending.length, 4);
    fetches.pending[2].answer(reply("new a", ["event:1"]));
    fetches.pending[3].answer(reply("new b"));
    assert.equal(text(await lateA), "new a");
    assert.equal(text(await lateB), "new b");
  });
  await t.step("a change to other tags does not stop the sharing", async () => {
    const cache = new ResponseCache({ maxBytes: 1 << 20 });
    const coalescer = new Coalescer(cache);
    const fetches = manualFetches();
    coalescer.fetch("k", fetches.run);
    cache.invalidate(["event:2"]);
    const late = coalescer.fetch("k", fetches.run);
    fetches.pending[0].answer(reply("shared", ["event:1"]));
    assert.equal(text(await late), "shared");
    assert.equal(fetches.pending.length, 1);
  });
  await t.step("nothing is shared while the cache is suspended", () => {
    const cache = new ResponseCache({ maxBytes: 1 << 20 });
    const coalescer = new Coalescer(cache);
    const fetches = manualFetches();
    cache.suspend(true);
    coalescer.fetch("k", fetches.run);
    coalescer.fetch("k", fetches.run);
    assert.equal(fetches.pending.length, 2);
  });
});

Deno.test("[gateway] Coalescer fails every request sharing a failed fetch with its error", async () => {
  const cache = new ResponseCache({ maxBytes: 1 << 20 });
  const coalescer = new Coalescer(cache);
  const fetches = manualFetches();
  const first = coalescer.fetch("k", fetches.run);
  cache.invalidate(["event:1"]);
  const later = coalescer.fetch("k", fetches.run);
  const error = new GatewayTimeoutError("Cannot reach catalog: the service did not answer in time");
  fetches.pending[0].fail(error);
  await assert.rejects(first, (e) => e === error);
  await assert.rejects(later, (e) => e === error, "even one that came after a change");
  assert.equal(fetches.pending.length, 1);

  // A server error the service answered is shared the same way.
  const a = coalescer.fetch("k", fetches.run);
  cache.invalidate(["event:1"]);
  const b = coalescer.fetch("k", fetches.run);
  fetches.pending[1].answer(reply('{"errors":[]}', undefined, 503));
  assert.deepEqual([(await a).status, (await b).status], [503, 503]);
  assert.equal(fetches.pending.length, 2);
});

// A scale-in review (2026-12-06): a fetch whose bus request was lost with its instance answered
// only at the request timeout, and every anonymous reader of that page shared it until then.
Deno.test("[gateway] Coalescer lets no one join a fetch in flight past the join wait", async () => {
  const cache = new ResponseCache({ maxBytes: 1 << 20 });
  const coalescer = new Coalescer(cache, { joinWaitMs: 50 });
  const fetches = manualFetches();
  const lost = coalescer.fetch("k", fetches.run);
  const joined = coalescer.fetch("k", fetches.run);
  assert.equal(fetches.pending.length, 1, "joined within the wait");
  await new Promise((resolve) => setTimeout(resolve, 80));
  const late = coalescer.fetch("k", fetches.run);
  const later = coalescer.fetch("k", fetches.run);
  assert.equal(fetches.pending.length, 2, "one more fetch, which the next request joins");
  fetches.pending[1].answer(reply("fresh", ["event:1"]));
  assert.deepEqual([text(await late), text(await later)], ["fresh", "fresh"]);
  // The lost fetch answers its own requests, and leaves the table as it found it.
  const third = coalescer.fetch("k", fetches.run);
  fetches.pending[0].answer(reply('{"errors":[]}', undefined, 504));
  assert.deepEqual([(await lost).status, (await joined).status], [504, 504]);
  assert.equal(fetches.pending.length, 3);
  fetches.pending[2].answer(reply("third", ["event:1"]));
  assert.equal(text(await third), "third");
  assert.equal(coalescer.size, 0);
});
