/**
 * nats-server defects that break a promise of this system, checked where they matter and told
 * once per process, with the release that fixes them: an operator cannot see them otherwise.
 *
 * @example
 * ```ts
 * import { skipsReplicatedRedeliveries } from "@shared/server_defects.ts";
 * console.log(skipsReplicatedRedeliveries("2.9.10")); // true
 * ```
 */
import type { Bus } from "./bus.ts";
import type { Logger } from "./log.ts";

/** The first release without nats-io/nats-server#6566 (see `skipsReplicatedRedeliveries`). */
const REDELIVERIES_FIXED_IN = [2, 11, 0];

/**
 * Whether nats-server `version` may skip a replicated consumer's redelivery for good: a fact
 * delivered by a consumer leader that lost its quorum (its node frozen, cut off, or stepping down)
 * is counted as delivered by no replica, and acknowledgements of later facts move the new
 * leader's floor past it (nats-io/nats-server#6566, fixed in 2.11). A chaos and a partition review
 * (2026-12-06, nats-server 2.9.10, FACTS_REPLICAS=3) saw audit's activity log and the discounts'
 * projection of events miss facts, silently: nothing pending, nothing parked; a verification run
 * then found the stream's copies themselves drifting apart under repeated freezes (one sequence,
 * different facts on different nodes; a fact acknowledged to the relay gone from the leader's
 * copy), which no consumer can mend (README, "Facts lost or skipped").
 */
export function skipsReplicatedRedeliveries(version: string): boolean {
  const parts = version.replace(/^v/, "").split(/[.-]/).slice(0, 3).map(Number);
  if (parts.some((part) => !Number.isInteger(part))) return false;
  for (const [i, fixed] of REDELIVERIES_FIXED_IN.entries()) {
    if (parts[i] !== fixed) return (parts[i] ?? 0) < fixed;
  }
  return false;
}

/** The buses told of it already: a process's consumers share one. */
const toldOfSkippedRedeliveries = new WeakSet<Bus>();

/**
 * Warns, once per bus (a service process has one; the version is its main connection's node's),
 * when facts are consumed from a
 * replicated stream (`replicas` > 1) on a nats-server that may skip their redelivery
 * (`skipsReplicatedRedeliveries`).
 */
export function warnOfSkippedRedeliveries(bus: Bus, replicas: number, log: Logger): void {
  const version = bus.nc.info?.version;
  if (toldOfSkippedRedeliveries.has(bus) || replicas < 2 || !version) return;
  if (!skipsReplicatedRedeliveries(version)) return;
  toldOfSkippedRedeliveries.add(bus);
  log.warn(
    `nats-server ${version} may skip a fact for good after a consumer's leader changes (its node ` +
      "frozen, cut off or stopping: nats-io/nats-server#6566), and its stream's copies may drift " +
      "apart and lose facts; run nats-server 2.11 or later",
    { version, replicas },
  );
}
