/**
 * What the requests a process serves tell of clocks that disagree. Each bus request carries its
 * sender's absolute deadline and the time it had left when sent (shared/deadline.ts); on arrival
 * the difference between the two (`senderAheadMs`) is the sender's clock's lead over this one's,
 * less the request's transit and its wait to be read.
 *
 * - A sender ahead shows on any one request (transit only makes the lead look smaller): logged.
 * - This process ahead looks like a request that waited: one request cannot tell. Once
 *   CLOCK_AHEAD_COUNT requests within CLOCK_AHEAD_WINDOW_MS arrived with over CLOCK_AHEAD_WARN_MS
 *   less than their budget, it is logged, naming both causes. Requests on time in between do not
 *   hide it (another requester's clock may be right: a streak that any on-time request broke
 *   hardly ever completed with half the traffic from a good clock, a review). Such a process
 *   refuses as too late every request whose budget its lead exceeds (504s with nothing else said:
 *   an operator review found no word of it until 2026-12-06), and cuts every other request's time
 *   by as much.
 *
 * Each kind is logged at most once in LOG_INTERVAL_MS.
 */
import { LinePace, type Logger } from "./log.ts";

/** How much later a deadline may lie than its budget allows before a sender's lead is logged. */
export const CLOCK_SKEW_WARN_MS = 250;
/** Less time than its budget a request arrives with to count as late (this clock ahead). */
export const CLOCK_AHEAD_WARN_MS = 1_000;
/** How many late requests within CLOCK_AHEAD_WINDOW_MS are logged. */
export const CLOCK_AHEAD_COUNT = 20;
const CLOCK_AHEAD_WINDOW_MS = 60_000;
const LOG_INTERVAL_MS = 10_000;

export class ClockSkewWatch {
  readonly #log: Logger;
  readonly #senderAheadSaid = new LinePace(LOG_INTERVAL_MS);
  readonly #selfAheadSaid = new LinePace(LOG_INTERVAL_MS);
  /** The last CLOCK_AHEAD_COUNT late requests: when each arrived, and how late. */
  #late: { at: number; ms: number }[] = [];

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Notes a request on `subject` as it arrives (`senderAheadMs` from `receivedDeadline`). */
  note(subject: string, senderAheadMs: number): void {
    if (senderAheadMs > CLOCK_SKEW_WARN_MS) this.#senderAhead(subject, senderAheadMs);
    const lateMs = -senderAheadMs;
    if (lateMs <= CLOCK_AHEAD_WARN_MS) return;
    const now = Date.now();
    this.#late.push({ at: now, ms: lateMs });
    if (this.#late.length > CLOCK_AHEAD_COUNT) this.#late.shift();
    const full = this.#late.length === CLOCK_AHEAD_COUNT;
    if (full && now - this.#late[0].at <= CLOCK_AHEAD_WINDOW_MS) this.#selfAhead(subject, now);
  }

  #senderAhead(subject: string, aheadMs: number): void {
    if (!this.#senderAheadSaid.due()) return;
    this.#log.warn(
      "a requester's clock runs ahead of this process's: each request is held to the time it was " +
        "sent with, but keep every machine's clock in sync (NTP)",
      { subject, aheadMs: Math.round(aheadMs) },
    );
  }

  #selfAhead(subject: string, now: number): void {
    if (!this.#selfAheadSaid.due()) return;
    this.#log.warn(
      "requests arrive with less time than they were sent with: this process's clock runs ahead " +
        "of its requesters' (it refuses as too late every request whose budget is shorter; keep " +
        "every machine's clock in sync, NTP), or each request waited that long to be read (overload)",
      {
        subject,
        aheadMs: Math.round(Math.min(...this.#late.map((late) => late.ms))),
        requests: this.#late.length,
        // Over a few seconds: a stall of this process looks so too; over the minute: the clock.
        withinMs: now - this.#late[0].at,
      },
    );
  }
}
