import assert from "node:assert/strict";
import { formatCents, percentOf, toCents, unitDiscount } from "./money.ts";

Deno.test("[discounts] toCents reads decimals exactly and refuses what is not money", () => {
  assert.equal(toCents("12.5"), 1250);
  assert.equal(toCents(" 100 "), 10000);
  assert.equal(toCents(0.1), 10);
  assert.equal(toCents(19.99), 1999);
  assert.equal(toCents("9999999999.99"), 999_999_999_999);
  assert.equal(toCents("7.500"), 750);
  assert.equal(toCents("+5"), 500);
  assert.equal(toCents("5."), 500);
  assert.equal(toCents(".05"), 5);
  for (
    const bad of [
      "-1",
      "1.005",
      "1.0001",
      ".",
      "+",
      "+-1",
      "1.5.0",
      "1e3",
      "",
      "abc",
      "10000000000",
      -1,
      1e21,
      NaN,
      0.1 + 0.2,
    ]
  ) {
    assert.equal(toCents(bad as string | number), undefined, String(bad));
  }
});

Deno.test("[discounts] formatCents prints two decimals, BigInt included", () => {
  assert.equal(formatCents(0), "0.00");
  assert.equal(formatCents(5), "0.05");
  assert.equal(formatCents(1999), "19.99");
  assert.equal(formatCents(-250), "-2.50");
  assert.equal(formatCents(99_999_999_999_999_999n), "999999999999999.99");
});

Deno.test("[discounts] percentOf rounds half-up to the cent", () => {
  assert.equal(percentOf(1999, 1500), 300); // 2.9985
  assert.equal(percentOf(10, 1500), 2); // 0.015
  assert.equal(percentOf(10, 1400), 1); // 0.014
  assert.equal(percentOf(999_999_999_999, 10_000), 999_999_999_999);
  assert.equal(percentOf(333, 3333), 111); // 33.33 % of 3.33 = 1.109889
});

Deno.test("[discounts] unitDiscount never exceeds the price", () => {
  assert.equal(unitDiscount(500, { type: "amount", valueCents: 800 }), 500);
  assert.equal(unitDiscount(500, { type: "amount", valueCents: 100 }), 100);
  assert.equal(unitDiscount(500, { type: "percent", valueCents: 10_000 }), 500);
  assert.equal(unitDiscount(0, { type: "percent", valueCents: 5_000 }), 0);
});
