// Stand-in for scripts/boot in the harness's own tests (test/net/*.test.ts): an HTTP
// server on 127.0.0.1:$PORT whose /health answers 200, so the harness can be
// proved without agentsh or the app. Node builtins only.

import { createServer } from "node:http";

const { PORT = "10000" } = process.env;
const port = Number(PORT);

const server = createServer((req, res) => {
  const ok = req.url === "/health";
  res.writeHead(ok ? 200 : 404, { "content-type": "application/json" });
  res.end(JSON.stringify(ok ? { status: "ok", fake: true } : { error: "not found" }));
});

// Stop on TERM like the real stack should, so the harness's graceful path is
// what the self-test exercises.
process.on("SIGTERM", () => server.close(() => process.exit(0)));

server.listen(port, "127.0.0.1", () => {
  console.log(`fake stack listening on 127.0.0.1:${port}`);
});
