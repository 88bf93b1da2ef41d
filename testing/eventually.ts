/**
 * Waits for something the system does in the background (a fact relayed, a consumer drained, a
 * process up): polls `check` until it holds, and fails the test when it has not after
 * `timeoutMs`. A bound, not a speed target: keep it generous.
 *
 * @example
 * ```ts
 * import { eventually } from "@testing/eventually.ts";
 * await eventually(async () => (await countRows()) === 2, 10_000, "both rows written");
 * ```
 */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  what = "the condition",
  intervalMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await check()) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * `promise`, or a rejection naming `what` after `ms`: something that may never settle (a request
 * never answered, a pool that never answers) must fail the test, not hang it.
 */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
