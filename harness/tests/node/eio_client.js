// A real Engine.IO client (engine.io-client, pinned in package.json) for the interoperation
// tests: it connects to the URL given, with the transports given, sends MESSAGES text messages
// one at a time, each once the previous one has come back, then closes. With polling and
// websocket both given, it waits after the first echo until the connection has upgraded. It
// prints one JSON line per event on stdout: open (with the transport), upgrade, message,
// close; and exits 0 once every message came back unchanged, 1 otherwise (a close first, an
// error, or the time limit, which a test sets well above what the exchange needs).
//
//   node eio_client.js URL TRANSPORTS MESSAGES LIMIT_MS [PATH]
//   node eio_client.js http://127.0.0.1:8080 polling,websocket 5 20000 /engine.io/

const { Socket } = require("engine.io-client");
const { say, ending } = require("./report.js");

const [url, transports, count, limit, path] = process.argv.slice(2);
const messages = Number(count);

const upgrading = transports.split(",").length > 1;
const socket = new Socket(url, {
  transports: transports.split(","),
  path: path || "/engine.io/",
  upgrade: upgrading,
});

let sent = 0;
let waiting = false;
let upgraded = false;
const finish = ending(socket);
const next = () => {
  sent += 1;
  waiting = true;
  socket.send(`message ${sent} of ${messages}`);
};

setTimeout(() => finish(1, `no end within ${limit} ms`), Number(limit)).unref();
socket.on("open", () => {
  say({ event: "open", transport: socket.transport.name });
  next();
});
socket.on("upgrade", (transport) => {
  say({ event: "upgrade", transport: transport.name });
  upgraded = true;
  if (sent === 1 && !waiting) next();
});
socket.on("message", (data) => {
  say({ event: "message", data: String(data), transport: socket.transport.name });
  if (String(data) !== `message ${sent} of ${messages}`) return finish(1, "a message came back changed");
  waiting = false;
  if (sent === messages) return finish(0, "every message came back");
  if (sent === 1 && upgrading && !upgraded) return;
  next();
});
socket.on("error", (e) => finish(1, `error: ${e && e.message ? e.message : e}`));
socket.on("close", (reason, description) => {
  say({ event: "close", reason, description: String(description && description.message || description || "") });
  finish(1, `closed: ${reason}`);
});
