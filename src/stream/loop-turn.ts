/**
 * The event loop's turn, as the unit of fairness between the streams of one connection.
 *
 * node delivers a socket's bytes in its poll phase, up to 32 reads (2 MiB) at a time, and runs a
 * reader's promise continuations after each read. A reader that does real work per message
 * (hashing a 64 KiB transfer chunk, writing it out) therefore runs inside that phase, and a small
 * message of another stream that arrived in the same reads waits for all of it: a ping-pong beside
 * a 1 GiB transfer saw 3–17 ms stalls of its client's event loop and a p99 of 5–6 ms. A reader
 * given a budget of time per turn (see MessageQueue's TurnBudget) leaves the rest for the check
 * phase and the turns after, so the other stream's message is handed over as soon as it is read.
 * tokio's cooperative budget (128 operations per task per poll) is the same idea.
 */

let turn = 0;
let advancing = false;

function advance(): void {
  turn++;
  advancing = false;
}

/**
 * A number that changes once the event loop has reached its check phase since the first call that
 * returned it. Schedules at most one `setImmediate` per turn, shared by every stream, and only
 * when asked: a process whose streams carry only small messages schedules nothing.
 */
export function loopTurn(): number {
  if (!advancing) {
    advancing = true;
    setImmediate(advance);
  }
  return turn;
}
