import assert from "node:assert/strict";
import { isEmailAddress } from "./email.ts";

Deno.test("[schemas] isEmailAddress takes RFC 5322 local parts and IDN domains", () => {
  const taken = [
    "jane&john@example.com",
    "o'brien@example.com",
    "a+tag@sub.example.co.uk",
    "ivan@example.xn--p1ai",
    "jane@bücher.de",
    "UPPER@EXAMPLE.COM",
  ];
  for (const text of taken) assert.equal(isEmailAddress(text), true, text);
});

Deno.test("[schemas] isEmailAddress refuses what no address is", () => {
  const refused = [
    "",
    "@example.com",
    "a@",
    "a@b@example.com",
    "a..b@example.com",
    "a.@example.com",
    '"quoted"@example.com',
    "a@localhost",
    "a@[192.168.0.1]",
    "a@example-.com",
    "a@example.c",
    "a@bü.co/x",
    "a@bü.co:80",
    `a@${"b".repeat(64)}.com`,
    `a@${"b.".repeat(127)}com`,
  ];
  for (const text of refused) assert.equal(isEmailAddress(text), false, text);
});
