// A real Socket.IO server (socket.io, pinned in package.json) for the interoperation tests: it
// listens on 127.0.0.1 at the port given (0: any), prints `listening on 127.0.0.1:PORT` once it
// does, answers every `echo` event with an `echo` event carrying the same text on the socket
// it came from, and prints one JSON line per event on stdout (connection with its transport,
// upgrade, echo, disconnect with its reason, and each request the Engine.IO layer refuses). It runs until it is sent SIGTERM, or until
// LIMIT_MS have passed, which a test sets well above what it needs.
//
//   node sio_server.js PORT LIMIT_MS

const http = require("http");
const { Server } = require("socket.io");
const { say } = require("./report.js");

const [port, limit] = process.argv.slice(2);

const server = http.createServer();
const io = new Server(server);

io.on("connection", (socket) => {
  const transport = () => socket.conn.transport.name;
  say({ event: "connection", id: socket.id, transport: transport() });
  socket.conn.on("upgrade", () => say({ event: "upgrade", id: socket.id, transport: transport() }));
  socket.on("echo", (text) => {
    say({ event: "echo", id: socket.id, data: String(text), transport: transport() });
    socket.emit("echo", text);
  });
  socket.on("disconnect", (reason) => say({ event: "disconnect", id: socket.id, reason }));
});
// A request the Engine.IO layer refuses (an unknown session id, say), as engine.io reports it.
io.engine.on("connection_error", (e) =>
  say({ event: "connection_error", code: e.code, message: e.message, url: e.req && e.req.url }),
);

const stop = () => {
  io.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
setTimeout(stop, Number(limit)).unref();
server.listen(Number(port), "127.0.0.1", () => {
  process.stdout.write(`listening on 127.0.0.1:${server.address().port}\n`);
});
