// node-http-proxy (npm http-proxy 1.18.1) as its README's first example: no `ws` option.
// Source: the http-proxy README (https://github.com/http-party/node-http-proxy#setup-a-basic-stand-alone-proxy-server):
// `httpProxy.createProxyServer({ target: ... }).listen(PORT)`; WebSocket proxying is off
// unless `ws: true` (#proxying-websockets), which node-http-proxy-ws.js adds. Without it the
// listening server has no `upgrade` listener, and Node.js closes an upgrade request's socket.
// Started and placeholders as node-http-proxy-ws.js.
'use strict';
const fs = require('fs');
const httpProxy = require('http-proxy');

function serve(port, ssl) {
  const options = { target: 'http://{{upstream}}' };
  if (ssl) options.ssl = ssl;
  const proxy = httpProxy.createProxyServer(options);
  proxy.on('error', (err, req, res) => {
    console.error(`proxy error on ${req.method} ${req.url}: ${err.message}`);
    if (res && typeof res.writeHead === 'function' && !res.headersSent) {
      res.writeHead(502);
      res.end();
    } else if (res && typeof res.destroy === 'function') {
      res.destroy();
    }
  });
  proxy.listen(port, '127.0.0.1');
}

serve({{listen}});
serve({{tls_listen}}, { cert: fs.readFileSync('{{cert}}'), key: fs.readFileSync('{{key}}') });
process.on('SIGTERM', () => process.exit(0));
