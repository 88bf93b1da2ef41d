/**
 * How many requests one process serves at once, and what the others do meanwhile.
 *
 * Without a limit, a service beyond its capacity started a handler for every message as it came:
 * thousands at once, each holding its rows and its rendered document while it waited for a pool
 * connection and for the one thread. An overload review (2026-12-05) drove the catalog with 3,000
 * clients: 15–20 of ~12,000 reads a second were answered in time, every other one was still run
 * to its end after the gateway had answered 504, its memory grew to 3.7 GB (V8's limit is 4.2),
 * its `$SRV.PING` went unanswered (`/health` and `/metrics` reported it missing while it served)
 * and NATS dropped its connection for unanswered pings.
 *
 * So a process serves at most `concurrency` requests at a time (SERVE_CONCURRENCY); the next ones
 * wait their turn, first come first served, and a request whose deadline passed while it waited
 * is answered 504 without running (shared/bus_serving.ts checks the deadline before any work).
 * What waits is bounded by its bytes: past `maxWaitingBytes`, a request is refused at once with a
 * 503, so that its client hears of the overload now rather than at its deadline. Discovery
 * (`$SRV.PING`, `STATS`) does not wait here: it tells the gateway the instance is alive and busy.
 */
import { DEFAULT_SERVE_CONCURRENCY } from "./config.ts";
import { metrics } from "./metrics.ts";
/** The bytes of requests that may wait for a turn before the next is refused with a 503. */
export const MAX_WAITING_BYTES = 32 * 1024 * 1024;

const waitingGauge = metrics.gauge(
  "oe_bus_requests_waiting",
  "Requests received and waiting for a turn: the process serves SERVE_CONCURRENCY at a time",
).series();
const refusedCounter = metrics.counter(
  "oe_bus_requests_refused",
  "Requests refused at once (503) because too many were waiting for a turn",
).series();

interface Waiting {
  bytes: number;
  run: () => Promise<void>;
  done: () => void;
}

export class Admission {
  readonly #concurrency: number;
  readonly #maxWaitingBytes: number;
  #running = 0;
  #waiting: Waiting[] = [];
  #next = 0;
  #waitingBytes = 0;

  constructor(concurrency = DEFAULT_SERVE_CONCURRENCY, maxWaitingBytes = MAX_WAITING_BYTES) {
    this.#concurrency = Math.max(1, Math.floor(concurrency));
    this.#maxWaitingBytes = maxWaitingBytes;
  }

  /** Requests waiting for a turn now. */
  get waiting(): number {
    return this.#waiting.length - this.#next;
  }

  /**
   * Runs `serve` now or when a turn frees; runs `refuse` instead when too much waits already.
   * Resolves once whichever ran has answered.
   */
  admit(bytes: number, serve: () => Promise<void>, refuse: () => Promise<void>): Promise<void> {
    if (this.#running < this.#concurrency) return this.#run(serve);
    if (this.#waitingBytes + bytes > this.#maxWaitingBytes) {
      refusedCounter.add();
      return refuse();
    }
    return new Promise<void>((done) => {
      this.#waiting.push({ bytes, run: serve, done });
      this.#waitingBytes += bytes;
      waitingGauge.add(1);
    });
  }

  async #run(serve: () => Promise<void>): Promise<void> {
    this.#running++;
    try {
      await serve();
    } finally {
      this.#running--;
      this.#startNext();
    }
  }

  #startNext(): void {
    if (this.#next === this.#waiting.length) return;
    const turn = this.#waiting[this.#next++];
    // Compacted now and then rather than shifted: shift() copies the whole list each time.
    if (this.#next > 1024 && this.#next * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#next);
      this.#next = 0;
    }
    this.#waitingBytes -= turn.bytes;
    waitingGauge.add(-1);
    this.#run(turn.run).finally(turn.done);
  }
}
