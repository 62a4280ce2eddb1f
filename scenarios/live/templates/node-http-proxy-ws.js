// node-http-proxy (npm http-proxy 1.18.1) with WebSocket proxying on, as its README shows.
// Source: the http-proxy README (https://github.com/http-party/node-http-proxy#proxying-websockets):
// "You can activate the websocket support for the proxy using `ws: true` in the options",
// `httpProxy.createProxyServer({ target: ..., ws: true }).listen(PORT)`; and for HTTPS
// (#using-https), `ssl: { key, cert }` in the options makes the listening server an HTTPS
// one. No timeouts are set (`timeout` and `proxyTimeout` unset: none).
// node-http-proxy-default.js is this file without `ws: true`.
// Started with `node proxy.js`, NODE_PATH naming target/gauntlet/node/node_modules (where
// cargo xtask test installs http-proxy from harness/tests/node/package-lock.json). It runs
// as whoever starts it; errors go to stderr (stderr.log in dir).
// Placeholders (harness/src/real/product/template.rs): listen, upstream, tls_listen, cert,
// key.
'use strict';
const fs = require('fs');
const httpProxy = require('http-proxy');

function serve(port, ssl) {
  const options = { target: 'http://{{upstream}}', ws: true };
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
