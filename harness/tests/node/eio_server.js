// A real Engine.IO server (engine.io, pinned in package.json) for the interoperation tests of
// Gauntlet's Engine.IO client: it listens on 127.0.0.1 at the port given (0: any), prints
// `listening on 127.0.0.1:PORT` once it does, sends every message back on the socket it came
// from, as it came (text or binary), and prints one JSON line per event on stdout (connection
// with its transport, upgrade, message with its transport, close with its reason, and each
// request it refuses). Its heartbeat is PING_INTERVAL_MS and PING_TIMEOUT_MS. It runs until it
// is sent SIGTERM, or until LIMIT_MS have passed, which a test sets well above what it needs.
//
//   node eio_server.js PORT PING_INTERVAL_MS PING_TIMEOUT_MS LIMIT_MS

const http = require("http");
const engine = require("engine.io");
const { say } = require("./report.js");

const [port, pingInterval, pingTimeout, limit] = process.argv.slice(2);

const server = http.createServer();
const eio = engine.attach(server, {
  pingInterval: Number(pingInterval),
  pingTimeout: Number(pingTimeout),
});

eio.on("connection", (socket) => {
  const transport = () => socket.transport.name;
  say({ event: "connection", id: socket.id, transport: transport() });
  socket.on("upgrade", () => say({ event: "upgrade", id: socket.id, transport: transport() }));
  socket.on("message", (data) => {
    const binary = typeof data !== "string";
    say({ event: "message", id: socket.id, binary, length: data.length, transport: transport() });
    socket.send(data);
  });
  socket.on("close", (reason) => say({ event: "close", id: socket.id, reason }));
});
eio.on("connection_error", (e) =>
  say({ event: "connection_error", code: e.code, message: e.message, url: e.req && e.req.url }),
);

const stop = () => {
  eio.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
setTimeout(stop, Number(limit)).unref();
server.listen(Number(port), "127.0.0.1", () => {
  process.stdout.write(`listening on 127.0.0.1:${server.address().port}\n`);
});
