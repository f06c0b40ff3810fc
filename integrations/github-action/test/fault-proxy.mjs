// A forwarding proxy for test.sh: it sits in front of a real `gatehouse
// serve` and injects the transport faults a runner meets on the way (a lost
// answer, a 503, a 429), so the tests can show that the action retries only
// what is safe to retry and never creates a second decision. Every request
// without a fault is passed to the real server unchanged.
//
// Usage: node fault-proxy.mjs UPSTREAM_URL [FAULTS]
//   FAULTS: comma-separated METHOD:KIND, used up in order, one per request
//   of that method. KIND is
//     drop  forward the request, then close the connection without answering
//           (the server did the work; the client never hears of it)
//     503   answer 503 unavailable with Retry-After: 1, without forwarding
//     429   answer 429 rate_limited with Retry-After: 1, without forwarding
// Prints "proxy listening on http://127.0.0.1:PORT" once ready; logs each
// request and its fault on stderr.
import http from 'node:http';

const [upstreamArg, spec = ''] = process.argv.slice(2);
if (!upstreamArg) {
  console.error('usage: node fault-proxy.mjs UPSTREAM_URL [METHOD:KIND,...]');
  process.exit(2);
}
const upstream = new URL(upstreamArg);
const faults = spec
  .split(',')
  .filter(Boolean)
  .map((item) => {
    const [method, kind] = item.split(':');
    if (!['drop', '503', '429'].includes(kind)) {
      console.error(`unknown fault ${item}`);
      process.exit(2);
    }
    return { method, kind, used: false };
  });

// Hop-by-hop headers describe one connection and must not be copied over.
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

function forward(req, body, onAnswer) {
  const headers = { ...req.headers, host: upstream.host };
  for (const name of HOP) delete headers[name];
  headers['content-length'] = String(body.length);
  const out = http.request(
    { hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers },
    (answer) => {
      const chunks = [];
      answer.on('data', (c) => chunks.push(c));
      answer.on('end', () => onAnswer(answer, Buffer.concat(chunks)));
    },
  );
  out.on('error', (err) => onAnswer(null, Buffer.from(String(err))));
  out.end(body);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const fault = faults.find((f) => !f.used && f.method === req.method);
    if (fault) fault.used = true;
    const kind = fault ? fault.kind : 'none';
    console.error(`${req.method} ${req.url} fault=${kind}`);
    if (kind === '503' || kind === '429') {
      const code = kind === '429' ? 'rate_limited' : 'unavailable';
      res.writeHead(Number(kind), { 'content-type': 'application/json', 'retry-after': '1' });
      res.end(JSON.stringify({ error: { code, message: 'injected by the test proxy' } }));
      return;
    }
    forward(req, body, (answer, data) => {
      if (kind === 'drop') {
        console.error(`dropped the ${answer ? answer.statusCode : 'failed'} answer`);
        req.socket.destroy();
        return;
      }
      if (!answer) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(data);
        return;
      }
      const headers = { ...answer.headers };
      for (const name of HOP) delete headers[name];
      headers['content-length'] = String(data.length);
      res.writeHead(answer.statusCode, headers);
      res.end(data);
    });
  });
});

server.listen(0, '127.0.0.1', () => {
  console.log(`proxy listening on http://127.0.0.1:${server.address().port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
