// What the interoperation scripts print: one JSON line per event on stdout, which the tests
// parse (harness/tests/it/socketio.rs), and, for a client, one `end` line before it exits.

/** Prints `event` as one JSON line on stdout. */
const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");

/**
 * A client's way out: the function it returns prints `{event: "end", code, why}` the first
 * time it is called, closes `socket`, and exits with `code`; later calls do nothing.
 */
const ending = (socket) => {
  let done = false;
  return (code, why) => {
    if (done) return;
    done = true;
    say({ event: "end", code, why });
    socket.close();
    process.exit(code);
  };
};

module.exports = { say, ending };
