/**
 * Redemption: reserving, confirming and releasing uses of a code for an order. Every statement
 * that changes `used_count` runs in the caller's transaction after locking the code's row, so
 * the order of locks is always code row, then reservation row (no deadlocks), and the cap is
 * checked by the one conditional update that takes the uses.
 */
import type { Queryable } from "@shared/db.ts";
import { ConflictError, NotFoundError, UnprocessableError } from "@shared/errors.ts";
import { type CodeRow, getCode } from "./codes.ts";

export type ReservationState = "reserved" | "confirmed" | "released";

export interface Reservation {
  orderId: string;
  codeId: string;
  quantity: number;
  state: ReservationState;
}

export interface RedemptionResult {
  reservation: Reservation;
  /** The code after the change (for the answer and the fact). */
  code: CodeRow;
  /** False when the call repeated an earlier one and nothing changed. */
  changed: boolean;
}

/** A row of `redemptions` (the timestamps are not read). */
type RedemptionRow = {
  discount_code_id: string;
  order_id: string;
  quantity: number;
  state: ReservationState;
};

/** What reserve checks of a code before taking uses. */
type OrderLimits = Pick<CodeRow, "id" | "used_for" | "min_quantity" | "max_quantity">;

function reservationOf(row: RedemptionRow): Reservation {
  return {
    orderId: String(row.order_id),
    codeId: String(row.discount_code_id),
    quantity: Number(row.quantity),
    state: row.state,
  };
}

/**
 * The code's row lock for a step of a reservation that exists already (confirm, release): trashed
 * codes too. An unknown code is the reservation's 404; anything else (a deadline cancelling the
 * wait, an outage) stays what it is, so a caller is never told "no reservation" of one still held.
 */
async function lockReservedCode(tx: Queryable, codeId: string, orderId: string): Promise<void> {
  await lockCode(tx, codeId, false).catch((error) => {
    throw error instanceof NotFoundError ? missing(codeId, orderId) : error;
  });
}

/** Locks the code's row (a live one only, when `live`); answers what reserve checks. */
async function lockCode(tx: Queryable, codeId: string, live: boolean): Promise<OrderLimits> {
  const [row] = live
    ? await tx<OrderLimits[]>`select id, used_for, min_quantity, max_quantity from discount_codes
      where id = ${codeId} and deleted_at is null for update`
    : await tx<OrderLimits[]>`select id, used_for, min_quantity, max_quantity from discount_codes
      where id = ${codeId} for update`;
  if (!row) throw new NotFoundError(`Cannot find discount code "${codeId}"`);
  return row;
}

/**
 * The per-order rules of a ticket code: one use is one discounted ticket of the order, and an
 * order discounts between min-quantity and max-quantity tickets (the price preview discounts
 * none below min-quantity and caps at max-quantity, so an order never asks for other amounts).
 * Event codes discount no tickets: they are refused here.
 */
function checkOrder(code: OrderLimits, quantity: number): void {
  if (code.used_for !== "ticket") {
    throw new UnprocessableError(
      "Cannot reserve: an event discount code does not discount ticket orders",
      { pointer: "/codeId" },
    );
  }
  const min = Number(code.min_quantity);
  const max = Number(code.max_quantity);
  if (quantity > max) {
    throw new UnprocessableError(
      `Cannot reserve ${quantity} uses: the discount code discounts at most ${max} tickets ` +
        "per order (max-quantity)",
      { pointer: "/quantity" },
    );
  }
  if (quantity < min) {
    throw new UnprocessableError(
      `Cannot reserve ${quantity} uses: the discount code needs at least ${min} discounted ` +
        "tickets per order (min-quantity)",
      { pointer: "/quantity" },
    );
  }
}

async function findReservation(
  tx: Queryable,
  codeId: string,
  orderId: string,
): Promise<RedemptionRow | undefined> {
  const [row] = await tx<RedemptionRow[]>`select * from redemptions
    where discount_code_id = ${codeId} and order_id = ${orderId}`;
  return row;
}

type Refusal =
  & Pick<CodeRow, "is_active" | "valid_from" | "valid_till" | "tickets_number" | "used_count">
  & { early: boolean | null; late: boolean | null };

/** Why the conditional update took nothing: inactive, outside its window, or used up. */
async function refusal(tx: Queryable, codeId: string, quantity: number): Promise<Error> {
  const [code] = await tx<Refusal[]>`
    select is_active, valid_from, valid_till, tickets_number, used_count,
      valid_from > now() as early, valid_till <= now() as late
    from discount_codes where id = ${codeId}`;
  if (!code.is_active) {
    return new UnprocessableError("Cannot reserve: the discount code is not active", {
      pointer: "/codeId",
    });
  }
  if (code.early) {
    return new UnprocessableError(
      `Cannot reserve: the discount code is valid from ${code.valid_from!.toISOString()}`,
      { pointer: "/codeId" },
    );
  }
  if (code.late) {
    return new UnprocessableError(
      `Cannot reserve: the discount code expired at ${code.valid_till!.toISOString()}`,
      { pointer: "/codeId" },
    );
  }
  const left = Math.max(0, Number(code.tickets_number) - Number(code.used_count));
  return new ConflictError(
    `Cannot reserve ${quantity} uses: the discount code has ${left} uses left`,
    { pointer: "/quantity" },
  );
}

/**
 * Takes `quantity` uses of the code for `orderId`. Repeating the call for the same order and
 * quantity changes nothing; a released reservation may be reserved again.
 */
export async function reserve(
  tx: Queryable,
  input: { codeId: string; orderId: string; quantity: number },
): Promise<RedemptionResult> {
  const { codeId, orderId, quantity } = input;
  const code = await lockCode(tx, codeId, true);
  const existing = await findReservation(tx, codeId, orderId);
  if (existing && existing.state !== "released") {
    if (Number(existing.quantity) !== quantity) {
      throw new ConflictError(
        `Cannot reserve: order ${orderId} already holds ${existing.quantity} uses of this code`,
        { pointer: "/quantity" },
      );
    }
    return {
      reservation: reservationOf(existing),
      code: (await getCode(tx, codeId))!,
      changed: false,
    };
  }
  // Checked only when uses are taken: a repeat of an earlier reservation stays a no-op even
  // if the limits changed since.
  checkOrder(code, quantity);
  // The one statement that decides: the cap, activity and window are checked as uses are taken.
  const [taken] = await tx`update discount_codes set used_count = used_count + ${quantity}
    where id = ${codeId} and deleted_at is null and is_active
      and (valid_from is null or valid_from <= now())
      and (valid_till is null or valid_till > now())
      and (tickets_number is null or used_count + ${quantity} <= tickets_number)
    returning id`;
  if (!taken) throw await refusal(tx, codeId, quantity);
  const [row] = await tx<
    RedemptionRow[]
  >`insert into redemptions (discount_code_id, order_id, quantity, state)
    values (${codeId}, ${orderId}, ${quantity}, 'reserved')
    on conflict (discount_code_id, order_id) do update
      set quantity = excluded.quantity, state = 'reserved', updated_at = now()
    returning *`;
  return { reservation: reservationOf(row), code: (await getCode(tx, codeId))!, changed: true };
}

function missing(codeId: string, orderId: string): NotFoundError {
  return new NotFoundError(`Cannot find a reservation of code "${codeId}" for order "${orderId}"`);
}

/** Marks a held reservation as used for good (the order was paid). */
export async function confirm(
  tx: Queryable,
  input: { codeId: string; orderId: string },
): Promise<RedemptionResult> {
  const { codeId, orderId } = input;
  // The code's lock first, as every other change of the code takes it: its facts then go out in
  // the order of the changes, each with the used-count it left.
  await lockReservedCode(tx, codeId, orderId);
  const [row] = await tx<
    RedemptionRow[]
  >`update redemptions set state = 'confirmed', updated_at = now()
    where discount_code_id = ${codeId} and order_id = ${orderId} and state = 'reserved'
    returning *`;
  if (row) {
    return {
      reservation: reservationOf(row),
      code: (await getCode(tx, codeId, true))!,
      changed: true,
    };
  }
  const existing = await findReservation(tx, codeId, orderId);
  if (!existing) throw missing(codeId, orderId);
  if (existing.state === "released") {
    throw new ConflictError(`Cannot confirm: the reservation for order ${orderId} was released`);
  }
  return {
    reservation: reservationOf(existing),
    code: (await getCode(tx, codeId, true))!,
    changed: false,
  };
}

/** Gives the uses of a reservation back (held or confirmed: a cancelled order). */
export async function release(
  tx: Queryable,
  input: { codeId: string; orderId: string },
): Promise<RedemptionResult> {
  const { codeId, orderId } = input;
  await lockReservedCode(tx, codeId, orderId);
  const [row] = await tx<
    RedemptionRow[]
  >`update redemptions set state = 'released', updated_at = now()
    where discount_code_id = ${codeId} and order_id = ${orderId} and state <> 'released'
    returning *`;
  if (row) {
    await tx`update discount_codes set used_count = used_count - ${row.quantity}
      where id = ${codeId}`;
    return {
      reservation: reservationOf(row),
      code: (await getCode(tx, codeId, true))!,
      changed: true,
    };
  }
  const existing = await findReservation(tx, codeId, orderId);
  if (!existing) throw missing(codeId, orderId);
  return {
    reservation: reservationOf(existing),
    code: (await getCode(tx, codeId, true))!,
    changed: false,
  };
}
