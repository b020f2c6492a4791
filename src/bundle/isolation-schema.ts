import { z } from "zod";

/**
 * `agentsh/isolation.yaml`: what agentsh-launch enforces on every governed command (ports it may
 * bind, UDP, the unprivileged identities). Ours, not agentsh's, so it is strict: a typo stops boot.
 */

/** 0 is the kernel's pick of an ephemeral port (a test server's `listen(0)`). */
const port = z.number().int().min(0).max(65535);

const absolutePath = z
  .string()
  .regex(/^\/[A-Za-z0-9._/-]+$/, "an absolute path")
  .refine((p) => !p.split("/").includes(".."), "no '..'")
  .refine((p) => p === "/" || !p.endsWith("/"), "no trailing '/'");

/** "PORT" or "LO-HI". */
export const portRangeSchema = z
  .union([port, z.string().regex(/^\d{1,5}(-\d{1,5})?$/, 'a port or "LO-HI"')])
  .transform((value, ctx) => {
    const [lo, hi = lo] = String(value).split("-").map(Number) as [number, number?];
    if (!(lo >= 0 && hi <= 65535 && lo <= (hi ?? lo) && (lo > 0 || hi === 0))) {
      ctx.addIssue({ code: "custom", message: `bad port range ${value}` });
      return z.NEVER;
    }
    return { lo, hi: hi ?? lo };
  });

export type PortRange = z.output<typeof portRangeSchema>;

/** `any`, or a non-empty list of ports and ranges (each problem of the list reported as such). */
function bindPortsSchema() {
  const list = z.array(portRangeSchema).min(1, 'list at least one port, or write "any"');
  return z.unknown().transform((value, ctx): "any" | PortRange[] => {
    if (value === "any") return "any";
    const parsed = list.safeParse(value);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) {
      ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
    }
    return z.NEVER;
  });
}

export const isolationSchema = z.strictObject({
  version: z.literal(1),
  identities: z.strictObject({
    /**
     * `required`: boot refuses without what the uid drop needs (CAP_SYS_PTRACE for agentsh's
     * supervisor); `when-permitted`: drop where it works, report the missing layer elsewhere;
     * `off`: never.
     */
    uid_drop: z.enum(["required", "when-permitted", "off"]),
    group: z.string().regex(/^[a-z_][a-z0-9_-]{0,30}$/),
    gid: z.number().int().min(1000).max(2_000_000_000),
    user_prefix: z.string().regex(/^[a-z_][a-z0-9_-]{0,20}$/),
    first_uid: z.number().int().min(1000).max(2_000_000_000),
    count: z.number().int().min(1).max(64),
    umask: z.string().regex(/^0?[0-7]{3}$/, "octal, e.g. 007"),
    scratch_root: absolutePath,
    /** The agentsh CLI runs as this unprivileged uid (and gid): out of commands' reach. */
    client_uid: z.number().int().min(1).max(2_000_000_000),
  }),
  filesystem: z.strictObject({
    /** Each session's own directory is `<sessions_root>/<id>`. */
    sessions_root: absolutePath,
    /** Entries of config.yaml's lists that commands never get from the launcher, by list. */
    withhold: z.strictObject({
      read: z.array(absolutePath),
      write: z.array(absolutePath),
    }),
  }),
  limits: z.strictObject({
    /** Per command: its whole process tree (cgroup), or each process (RLIMIT_DATA) without one. */
    memory_mb: z.number().int().min(16).max(1_048_576),
    /** Per command: processes and threads of its tree (cgroup pids.max). */
    processes: z.number().int().min(8).max(1_000_000),
    /** Per command: share of one core, in percent (cgroup cpu.max); 100 = one core. */
    cpu_percent: z.number().int().min(1).max(6400),
    /** CPU seconds a single process may use (RLIMIT_CPU: SIGXCPU). */
    cpu_seconds: z.number().int().min(1).max(86_400),
    /** The largest file a command may write (RLIMIT_FSIZE: SIGXFSZ). */
    file_size_mb: z.number().int().min(1).max(1_048_576),
    /** Open files per process (RLIMIT_NOFILE). */
    open_files: z.number().int().min(64).max(1_048_576),
    /** A session's directory with its scratch HOME/TMPDIR, and the shared workspace. */
    disk_mb: z.strictObject({
      session: z.number().int().min(1),
      workspace: z.number().int().min(1),
    }),
    /** Free space the volume keeps for the service (state, agentsh's events, audit). */
    headroom_mb: z.number().int().min(1),
  }),
  network: z.strictObject({
    /** The service's own ports are taken out at boot (withoutPorts). */
    bind_tcp_ports: bindPortsSchema(),
    udp: z.boolean(),
    netlink_route: z.boolean(),
  }),
});

export type IsolationSettings = z.output<typeof isolationSchema>;

/** What commands may bind: "any" (the kernel's own rules), or Landlock rules for these ranges. */
export type BindPorts = IsolationSettings["network"]["bind_tcp_ports"];

/** The ranges without the given ports (the service's own: never bindable by commands). */
export function withoutPorts(ranges: BindPorts, reserved: readonly number[]): BindPorts {
  if (ranges === "any") return "any";
  let result = [...ranges];
  for (const port of reserved) {
    result = result.flatMap((r) =>
      port < r.lo || port > r.hi
        ? [r]
        : [
            ...(port > r.lo ? [{ lo: r.lo, hi: port - 1 }] : []),
            ...(port < r.hi ? [{ lo: port + 1, hi: r.hi }] : []),
          ],
    );
  }
  return result;
}

/** Number of ports the bind ranges open (each is one Landlock rule at every command start). */
export function bindPortCount(ranges: BindPorts): number {
  if (ranges === "any") return 0;
  return ranges.reduce((n, r) => n + r.hi - r.lo + 1, 0);
}
