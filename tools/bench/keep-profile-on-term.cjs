// Preloaded into the app only by `npm run bench -- --cpu-prof` (NODE_OPTIONS=--require). The
// app ends on its first SIGTERM itself (process.once) and V8 writes the CPU profile on that exit;
// the harness and scripts/boot both send TERM, and a second one would otherwise kill the process
// with the default action before the profile is written.
process.on("SIGTERM", () => {});
