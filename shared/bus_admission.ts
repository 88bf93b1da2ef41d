/**
 * How many requests one process serves at once, and what the others do meanwhile.
 *
 * Without a limit, a service beyond its capacity started a handler for every message as it came:
 * thousands at once, each holding its rows and its rendered document while it waited for a pool
 * connection and for the one thread. An overload review (2026-12-05) drove the catalog with 3,000
 * clients: 15–20 reads a second were answered in time, where it serves ~400–550, and every other
 * one was still run to its end after the gateway had answered 504, its memory grew to 3.7 GB (V8's limit is 4.2),
 * its `$SRV.PING` went unanswered (`/health` and `/metrics` reported it missing while it served)
 * and NATS dropped its connection for unanswered pings.
 *
 * So a process serves at most `concurrency` requests at a time (SERVE_CONCURRENCY); the next ones
 * wait their turn, first come first served. A request is refused at once (`refuse("busy")`, a
 * 503) when its wait, estimated from the requests waiting ahead and the time a turn has taken
 * lately, would be longer than half its time left (`WAIT_SHARE`), or would not leave a turn's
 * time before its deadline. A first come first served list that took everyone served nobody in
 * time once it held more than a deadline's worth (a second review, 2,900 waiting at 3,000
 * clients: 205 answers a second where the catalog serves 550). One whose turn comes with less
 * than a turn's time left is answered without running (`refuse("late")`, a 504): run, it would
 * most likely answer after its requester gave up. The bytes waiting are bounded too, for memory.
 * Discovery (`$SRV.PING`, `STATS`) does not wait here: it tells the gateway the instance is
 * alive and busy. Nor does a request a handler sent while serving one (`nested`): it is part of
 * work already admitted somewhere, often here (the catalog's include check asks discounts, which
 * asks the catalog who the caller is), and waiting behind its own cause never ends (a code
 * review: every such write a 504 at SERVE_CONCURRENCY=1).
 */
import { DEFAULT_SERVE_CONCURRENCY } from "./config.ts";
import { metrics } from "./metrics.ts";

/** The bytes of requests that may wait for a turn before the next is refused with a 503. */
export const MAX_WAITING_BYTES = 32 * 1024 * 1024;
/** How much each finished turn moves the estimate of a turn's time: about the last 20 count. */
const TURN_TIME_WEIGHT = 0.05;
/**
 * The share of its time left a request may spend waiting for its turn; past it, it is refused at
 * once. A list sized to the whole deadline served its reads after 4.4 s (p50) and a dip in
 * throughput made them miss it together (a third review: 390–413 answers a second where the
 * catalog serves 570, 504s, recovery 4.2–4.7 s); a fixed 1 s refused four in five of a load the
 * catalog served in time within 2 s (a fourth: 30,000–40,000 503s in 20 s, 10–36 % fewer reads).
 * Half keeps a margin for the estimate.
 */
const WAIT_SHARE = 0.5;

const waitingGauge = metrics.gauge(
  "oe_bus_requests_waiting",
  "Requests received and waiting for a turn: the process serves SERVE_CONCURRENCY at a time",
).series();
/** Why a request was answered without running. */
export type Refusal = "busy" | "late";

const refusedCounter = metrics.counter(
  "oe_bus_requests_refused",
  "Requests answered without running, by reason: busy (503 at arrival: not servable in time, " +
    "or too many bytes waited), late (504: its turn came too near its deadline)",
  ["reason"],
);
const refused: Record<Refusal, { add(): void }> = {
  busy: refusedCounter.series("busy"),
  late: refusedCounter.series("late"),
};

export interface Turn {
  /** Runs the request and answers it. */
  serve: () => Promise<void>;
  /** Answers it without running it: `busy` (503) at arrival, `late` (504) when its turn came. */
  refuse: (why: Refusal) => Promise<void>;
}

interface Waiting {
  bytes: number;
  deadline: number;
  turn: Turn;
  done: () => void;
}

export class Admission {
  readonly #concurrency: number;
  readonly #maxWaitingBytes: number;
  #running = 0;
  #waiting: Waiting[] = [];
  #next = 0;
  #waitingBytes = 0;
  /** Milliseconds a turn has taken lately (undefined until one has finished). */
  #turnMs: number | undefined;

  constructor(concurrency = DEFAULT_SERVE_CONCURRENCY, maxWaitingBytes = MAX_WAITING_BYTES) {
    this.#concurrency = Math.max(1, Math.floor(concurrency));
    this.#maxWaitingBytes = maxWaitingBytes;
  }

  /** Requests waiting for a turn now. */
  get waiting(): number {
    return this.#waiting.length - this.#next;
  }

  /**
   * Serves the request now or when a turn frees, or refuses it at once when it would not be
   * served before its `deadline` (ms since epoch) or too many bytes wait; a `nested` one at once.
   * Resolves once it has been answered.
   */
  admit(request: { bytes: number; deadline: number; nested?: boolean }, turn: Turn): Promise<void> {
    // Outside the count: it neither takes a turn nor frees one.
    if (request.nested) return turn.serve();
    if (this.#running < this.#concurrency) return this.#run(turn);
    if (!this.#inTime(request.deadline) || !this.#roomFor(request.bytes)) {
      refused.busy.add();
      return turn.refuse("busy");
    }
    return new Promise<void>((done) => {
      this.#waiting.push({ bytes: request.bytes, deadline: request.deadline, turn, done });
      this.#waitingBytes += request.bytes;
      waitingGauge.add(1);
    });
  }

  /** Whether a request arriving now would be served soon enough, as far as is known. */
  #inTime(deadline: number): boolean {
    if (this.#turnMs === undefined) return true;
    // Every turn is taken: one frees every turnMs / concurrency on average.
    const wait = (this.waiting + 1) * this.#turnMs / this.#concurrency;
    const left = deadline - Date.now();
    return wait <= left * WAIT_SHARE && wait + this.#turnMs < left;
  }

  /** Whether a request whose turn has come can still be answered before `deadline`. */
  #stillInTime(deadline: number): boolean {
    return Date.now() + (this.#turnMs ?? 0) < deadline;
  }

  #roomFor(bytes: number): boolean {
    return this.#waitingBytes + bytes <= this.#maxWaitingBytes;
  }

  async #run(turn: Turn): Promise<void> {
    this.#running++;
    const began = performance.now();
    try {
      await turn.serve();
    } finally {
      this.#running--;
      const took = performance.now() - began;
      this.#turnMs = this.#turnMs === undefined
        ? took
        : this.#turnMs + TURN_TIME_WEIGHT * (took - this.#turnMs);
      this.#startNext();
    }
  }

  #startNext(): void {
    while (this.#next < this.#waiting.length) {
      const waiting = this.#waiting[this.#next++];
      this.#compact();
      this.#waitingBytes -= waiting.bytes;
      waitingGauge.add(-1);
      if (this.#stillInTime(waiting.deadline)) {
        this.#run(waiting.turn).finally(waiting.done);
        return;
      }
      // Its requester has given up, or will before a turn's time: answered at once, and the turn
      // goes to the next one. Not a turn's time: counting these would make turns look shorter.
      refused.late.add();
      waiting.turn.refuse("late").finally(waiting.done);
    }
  }

  /** Drops what was taken from the front now and then: shift() copies the whole list each time. */
  #compact(): void {
    if (this.#next > 1024 && this.#next * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#next);
      this.#next = 0;
    }
  }
}
