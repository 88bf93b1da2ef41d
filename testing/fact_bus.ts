/**
 * A bus of a test's own: a unique subject prefix, and the fact streams of that prefix removed
 * again on dispose, so a test that publishes or consumes facts leaves nothing behind.
 *
 * @example
 * ```ts
 * import { factBus } from "@testing/fact_bus.ts";
 * Deno.test("[demo] a bus and a fact stream of our own", async () => {
 *   await using b = await factBus({ ensureStream: true });
 *   console.log(b.prefix);
 * });
 * ```
 */
import { deleteFactStream, ensureFactStream } from "@shared/fact_streams.ts";
import { type TestBus, testBus } from "@shared/testing.ts";

/**
 * A bus connection with a unique prefix; on dispose the prefix's fact and parked streams are
 * deleted (whoever made them) before the connection closes. `ensureStream` makes the fact stream
 * now (for tests that publish before any service has started).
 */
export async function factBus(options: { ensureStream?: boolean } = {}): Promise<TestBus> {
  const made = await testBus();
  if (options.ensureStream) {
    await ensureFactStream(made.bus).catch(async (error) => {
      await made[Symbol.asyncDispose]();
      throw error;
    });
  }
  return {
    ...made,
    async [Symbol.asyncDispose]() {
      await deleteFactStream(made.bus);
      await made[Symbol.asyncDispose]();
    },
  };
}
