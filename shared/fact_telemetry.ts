/**
 * How a fact stays in the trace of the request that caused it (only with OTEL_DENO=true):
 * `recordFact` stores the request's trace context with the outbox row; the relay publishes the
 * fact in a producer span that continues that trace and puts its own context in the message's
 * `traceparent` header; each consumer handles it in a consumer span, child of that producer span.
 * A consumer handles facts in batches, so the batch's work (one insert for a thousand facts) runs
 * in one batch span of its own, linked to every fact's producer span, and each fact's consumer
 * span links back to the batch span.
 *
 * @example
 * ```ts ignore
 * await tracePublish(row, subject, headers, () => js.publish(subject, data, { headers }));
 * ```
 */
import type { MsgHdrs } from "@nats-io/nats-core";
import {
  contextFromCarrier,
  contextFromHeaders,
  failSpan,
  injectHeaders,
  type Span,
  spanContextOf,
  SpanKind,
  startSpan,
  type TraceCarrier,
} from "./telemetry.ts";
import type { Context } from "@opentelemetry/api";

/** What the relay knows of a fact it publishes. */
export interface OutboxEntry {
  id: string;
  subject: string;
  trace_context: TraceCarrier | null;
}

/**
 * Publishes in a producer span whose parent is the context stored with the outbox row. The span is
 * named by the row's subject; `messaging.destination.name` is the subject published on, its bus
 * prefix included, as bus requests' spans say theirs (it said the row's until 2026-12-05: an
 * observability review).
 */
export async function tracePublish<T>(
  entry: OutboxEntry,
  destination: string,
  headers: MsgHdrs,
  publish: () => Promise<T>,
): Promise<T> {
  const { span, ctx } = startSpan(`publish ${entry.subject}`, {
    kind: SpanKind.PRODUCER,
    parent: contextFromCarrier(entry.trace_context),
    attributes: {
      "messaging.system": "nats",
      "messaging.operation.type": "send",
      "messaging.destination.name": destination,
      "messaging.message.id": entry.id,
    },
  });
  injectHeaders(headers, ctx);
  try {
    return await publish();
  } catch (error) {
    failSpan(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** One received fact: its id, type and the headers it came with. */
export interface Delivered {
  id: string;
  type: string;
  headers: MsgHdrs | undefined;
}

/** The spans of one batch being handled; end them with the ids that failed. */
export interface BatchSpans {
  /** The batch span's context: run the handler in it. */
  ctx: Context;
  end(failed: ReadonlySet<string> | "all", error?: unknown): void;
}

/** Starts the batch span and one consumer span per fact (see the module's description). */
export function startBatchSpans(consumer: string, delivered: Delivered[]): BatchSpans {
  const parents = delivered.map((d) => contextFromHeaders(d.headers));
  const links = parents.flatMap((parent) => {
    const found = spanContextOf(parent);
    return found ? [{ context: found }] : [];
  });
  const batch = startSpan(`process ${consumer} batch`, {
    kind: SpanKind.CONSUMER,
    links,
    attributes: {
      "messaging.system": "nats",
      "messaging.operation.type": "process",
      "messaging.consumer.group.name": consumer,
      "messaging.batch.message_count": delivered.length,
    },
  });
  const perFact: [string, Span][] = delivered.map((d, i) => [
    d.id,
    startSpan(`process ${d.type}`, {
      kind: SpanKind.CONSUMER,
      parent: parents[i],
      links: [{ context: batch.span.spanContext() }],
      attributes: {
        "messaging.system": "nats",
        "messaging.operation.type": "process",
        "messaging.consumer.group.name": consumer,
        "messaging.message.id": d.id,
      },
    }).span,
  ]);
  return {
    ctx: batch.ctx,
    end(failed, error) {
      for (const [id, span] of perFact) {
        if (failed === "all" || failed.has(id)) failSpan(span, error ?? new Error("parked"));
        span.end();
      }
      if (failed === "all") failSpan(batch.span, error);
      batch.span.end();
    },
  };
}
