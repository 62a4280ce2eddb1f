// A real Socket.IO client (socket.io-client, pinned in package.json, with its default
// reconnection: 1 s first delay, 5 s at most, randomisation 0.5) for the interoperation tests.
// It connects to the URL given with the transports given and sends `echo` events, each once
// the previous one has come back. After the first, it stays quiet for QUIET_MS (0: not at
// all), so that an intermediary that cuts quiet connections may cut it, and sends the next
// echo once it is connected again; or, with `upgrade` for QUIET_MS, it waits until the
// connection has upgraded to a WebSocket before it sends the next. It prints one JSON line per event on stdout (connect with
// the transport, upgrade, echo, disconnect with its reason, reconnect attempts) and exits 0
// once MESSAGES echoes came back unchanged, 1 otherwise (an error, or the time limit, which a
// test sets well above what the exchange needs).
//
// With `fail-fast` last, the first disconnect or connection error ends it, with 1.
//
//   node sio_client.js URL TRANSPORTS MESSAGES QUIET_MS LIMIT_MS [fail-fast]

const { io } = require("socket.io-client");
const { say, ending } = require("./report.js");

const [url, transports, count, quiet, limit, mode] = process.argv.slice(2);
const failFast = mode === "fail-fast";
const messages = Number(count);

const socket = io(url, { transports: transports.split(",") });
const engine = () => socket.io.engine;

let sent = 0;
let waiting = false;
let upgraded = false;
const finish = ending(socket);
const next = () => {
  if (waiting || sent === messages || !socket.connected) return;
  sent += 1;
  waiting = true;
  socket.emit("echo", `message ${sent} of ${messages}`);
};

setTimeout(() => finish(1, `no end within ${limit} ms`), Number(limit)).unref();
// Each Engine.IO session (a new one on every reconnection) is watched from its open, before
// the Socket.IO connection on top of it: the upgrade may come first.
socket.io.on("open", () => {
  engine().on("upgrade", (t) => {
    say({ event: "upgrade", transport: t.name });
    upgraded = true;
    if (quiet === "upgrade" && sent === 1 && !waiting) next();
  });
});
socket.on("connect", () => {
  say({ event: "connect", transport: engine().transport.name });
  next();
});
socket.on("echo", (text) => {
  say({ event: "echo", data: String(text), transport: engine().transport.name });
  if (String(text) !== `message ${sent} of ${messages}`) return finish(1, "an echo came back changed");
  waiting = false;
  if (sent === messages) return finish(0, "every message came back");
  if (sent === 1 && quiet === "upgrade" && !upgraded) return;
  if (sent === 1 && Number(quiet) > 0) return setTimeout(next, Number(quiet));
  next();
});
socket.on("disconnect", (reason) => {
  say({ event: "disconnect", reason });
  if (failFast) finish(1, `disconnected: ${reason}`);
});
socket.on("connect_error", (e) => {
  say({ event: "connect_error", message: e.message });
  if (failFast) finish(1, `connection error: ${e.message}`);
});
socket.io.on("reconnect_attempt", (n) => say({ event: "reconnect_attempt", attempt: n }));
