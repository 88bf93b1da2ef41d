import assert from "node:assert/strict";
import { StreamPosition } from "./fact_position.ts";

Deno.test("[fact position] an ephemeral consumer resumes at its first unsettled fact, or after its last", () => {
  const position = new StreamPosition(6);
  assert.equal(position.resumeAt(), 7);
  position.delivered(7);
  position.delivered(8);
  position.settled(8);
  assert.equal(position.resumeAt(), 7, "7 was handed over and not settled");
  position.settled(7);
  assert.equal(position.resumeAt(), 9);
});

// Another instance of a durable consumer may hold fact 4, unsettled, while this one settled 5 to
// 9: only the server's acknowledgement floor says what every instance settled.
Deno.test("[fact position] a shared consumer never resumes past the server's acknowledgement floor", () => {
  const position = new StreamPosition(3, { shared: true });
  for (const sequence of [5, 6, 7, 8, 9]) {
    position.delivered(sequence);
    position.settled(sequence);
  }
  assert.equal(position.resumeAt(), 4);
  position.acknowledgedUpTo(7);
  assert.equal(position.resumeAt(), 8);
  position.acknowledgedUpTo(2);
  assert.equal(position.resumeAt(), 8, "a floor read earlier does not move it back");
  position.acknowledgedUpTo(12);
  assert.equal(position.resumeAt(), 10, "nor past where this instance itself stands");
});

// Found by a review: a fact this instance gave back (a batch it could not handle, or one held when
// it stopped a pull) and another instance then handled stayed "unsettled" here for good: every
// remake replayed from it, and such facts piled up over a long life.
Deno.test("[fact position] a fact given back and settled by another instance is forgotten at the floor", () => {
  const position = new StreamPosition(3, { shared: true });
  position.delivered(4); // given back, never settled here
  for (const sequence of [5, 6, 7, 8, 9]) {
    position.delivered(sequence);
    position.settled(sequence);
  }
  assert.equal(position.resumeAt(), 4);
  position.acknowledgedUpTo(9);
  assert.equal(position.resumeAt(), 10, "every instance settled up to 9");
  position.delivered(11);
  assert.equal(position.resumeAt(), 10, "still never past the floor");
});

// A delivery that never arrived (its number skipped) may be any fact above the highest delivered
// before it: made again, the consumer resumes there until the acknowledgement floor passes it.
Deno.test("[fact position] an ephemeral consumer does not resume past a delivery it never got", () => {
  const position = new StreamPosition(2);
  position.delivered(3, 1);
  position.settled(3);
  position.delivered(5, 3); // delivery 2 (fact 4, say) never arrived
  position.settled(5);
  assert.equal(position.resumeAt(), 4);
  position.acknowledgedUpTo(3);
  assert.equal(position.resumeAt(), 4, "the floor has not passed it yet");
  position.acknowledgedUpTo(5);
  assert.equal(position.resumeAt(), 6);
  position.remade(6);
  position.delivered(7, 2); // the consumer made again lost its first delivery
  position.settled(7);
  assert.equal(position.resumeAt(), 6);
});

Deno.test("[fact position] a shared consumer's skipped delivery numbers are other instances'", () => {
  const position = new StreamPosition(2, { shared: true });
  position.acknowledgedUpTo(2);
  position.delivered(3, 1);
  position.settled(3);
  position.delivered(6, 4);
  position.settled(6);
  position.acknowledgedUpTo(6);
  assert.equal(position.resumeAt(), 7);
});
