/*
 * agentsh-launch runs between agentsh's sandbox wrapper (agentsh-unixwrap: seccomp user-notify
 * for execve and file calls, plus a Landlock layer of its own) and the governed command. It owns
 * the kernel layers the service relies on, so that none of them depends on agentsh applying its
 * own correctly:
 *
 *   - one Landlock domain with the complete file-system ruleset (--fs, derived by the service
 *     from the bundle: execute, read and write lists, the command's workspace and scratch), every
 *     right of the kernel's ABI handled (IOCTL_DEV on ABI 5); TCP connect only to the agentsh
 *     proxy's port named in the command's own HTTP(S)_PROXY and bind only to --bind-ports
 *     (ABI >= 4; none given: no bind at all; --bind-any: no bind layer); signals and abstract unix sockets scoped to the command (ABI >= 6);
 *   - a seccomp filter on socket(): unix and TCP sockets (UDP and NETLINK_ROUTE when allowed);
 *     no raw, packet or other families, no io_uring;
 *   - an identity: an unprivileged uid (--uid/--gid), or, where agentsh lacks CAP_SYS_PTRACE
 *     and needs the command to stay uid 0 (--keep-identity), uid 0 with every capability
 *     dropped (bounding, permitted, effective, inheritable, ambient; securebits locked) plus the
 *     process guard (guard.c): no signal, prlimit, scheduling or F_SETOWN towards agentsh, the
 *     service (--protect-pid), init, any of their threads or their process groups; no kill(-1);
 *   - every inherited file descriptor above 2 closed; HOME and TMPDIR private (--scratch).
 *
 * agentsh-unixwrap applies its Landlock domain on one thread of a Go program and may exec on
 * another, where it is missing (measured: 34 of 800 concurrent commands ran without it). This
 * launcher is single-threaded C: whatever it restricts is what execs.
 *
 * It fails closed: when a layer cannot be applied, the command is not executed; one line
 * "agentsh-launch: refused: <layer>: <reason> (run <tag>)" goes to stderr, exit code 122.
 *
 * Usage: agentsh-launch [options] -- PROGRAM [ARGS...]
 *        agentsh-launch --probe [--max-abi=N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

static const char *refusal_tag = "";

void set_refusal_tag(const char *tag) { refusal_tag = tag ? tag : ""; }

_Noreturn void refuse(const char *layer, const char *format, ...) {
  char reason[512];
  va_list args;
  va_start(args, format);
  vsnprintf(reason, sizeof reason, format, args);
  va_end(args);
  /* One line: the service recognises the refusal by its exact shape. */
  for (char *c = reason; *c; c++) {
    if (*c == '\n' || *c == '\r') *c = ' ';
  }
  if (*refusal_tag)
    dprintf(2, "agentsh-launch: refused: %s: %s (run %s)\n", layer, reason, refusal_tag);
  else
    dprintf(2, "agentsh-launch: refused: %s: %s\n", layer, reason);
  _exit(EXIT_REFUSED);
}

static bool parse_uint(const char *s, unsigned long max, int base, unsigned long *out) {
  if (!s || !*s) return false;
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, base);
  if (errno || *end || v > max || *s == '-' || *s == '+') return false;
  *out = v;
  return true;
}

static void parse_port_range(const char *s, struct port_range *r) {
  char lo[8], hi[8];
  const char *dash = strchr(s, '-');
  size_t n = dash ? (size_t)(dash - s) : strlen(s);
  if (n == 0 || n >= sizeof lo || (dash && strlen(dash + 1) >= sizeof hi))
    refuse("usage", "bad --bind-ports '%s'", s);
  memcpy(lo, s, n);
  lo[n] = 0;
  strcpy(hi, dash ? dash + 1 : lo);
  unsigned long l, h;
  /* Port 0 alone: the kernel picks an ephemeral port (a test server's listen(0)). */
  if (!parse_uint(lo, 65535, 10, &l) || !parse_uint(hi, 65535, 10, &h) || h < l ||
      (l == 0 && h != 0))
    refuse("usage", "bad --bind-ports '%s': want 0, PORT or LO-HI with 1 <= LO <= HI <= 65535", s);
  r->lo = (uint16_t)l;
  r->hi = (uint16_t)h;
}

/* MODE letters r w x i (read, write, execute, device ioctl); 0 when not a mode. */
unsigned parse_fs_mode(const char *from, const char *to) {
  unsigned mode = 0;
  if (from == to) return 0;
  for (const char *c = from; c < to; c++) {
    switch (*c) {
      case 'r': mode |= FS_READ; break;
      case 'w': mode |= FS_WRITE; break;
      case 'x': mode |= FS_EXEC; break;
      case 'i': mode |= FS_IOCTL; break;
      default: return 0;
    }
  }
  return mode;
}

const char *fs_mode_letters(unsigned mode) {
  static char letters[5];
  int n = 0;
  if (mode & FS_READ) letters[n++] = 'r';
  if (mode & FS_WRITE) letters[n++] = 'w';
  if (mode & FS_EXEC) letters[n++] = 'x';
  if (mode & FS_IOCTL) letters[n++] = 'i';
  letters[n] = 0;
  return letters;
}

/* --fs=MODE:PATH */
static void parse_fs(const char *s, struct fs_rule *rule) {
  const char *colon = strchr(s, ':');
  if (!colon || colon == s) refuse("usage", "bad --fs '%s': want MODE:PATH", s);
  unsigned mode = parse_fs_mode(s, colon);
  if (!mode) refuse("usage", "bad --fs mode in '%s': letters r w x i", s);
  const char *path = colon + 1;
  if (path[0] != '/') refuse("usage", "bad --fs '%s': the path must be absolute", s);
  rule->mode = mode;
  rule->path = path;
}

/* Matches "--name" or "--name=value" (value then in *value, else the next argument). */
static bool flag(const char *arg, const char *name, const char **value, char ***rest) {
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0) return false;
  if (!value) return arg[n] == 0;
  if (arg[n] == '=') {
    *value = arg + n + 1;
    return true;
  }
  if (arg[n] != 0) return false;
  if (!(*rest)[1]) refuse("usage", "%s needs a value", name);
  *value = *++(*rest);
  return true;
}

static void parse_args(int argc, char **argv, struct options *o) {
  (void)argc;
  memset(o, 0, sizeof *o);
  o->uid = o->gid = o->ruleset_server_uid = -1;
  o->umask = 077;
  const char *v;
  unsigned long n;
  char **a = argv + 1;
  /* The tag first, so that every refusal below carries it. */
  for (char **t = a; *t && strcmp(*t, "--") != 0; t++) {
    if (strncmp(*t, "--tag=", 6) == 0) set_refusal_tag(*t + 6);
  }
  for (; *a; a++) {
    if (strcmp(*a, "--") == 0) {
      o->argv = a + 1;
      break;
    } else if (flag(*a, "--probe", NULL, &a)) {
      o->probe = true;
    } else if (flag(*a, "--keep-identity", NULL, &a)) {
      o->keep_identity = true;
    } else if (flag(*a, "--udp", NULL, &a)) {
      o->udp = true;
    } else if (flag(*a, "--netlink-route", NULL, &a)) {
      o->netlink_route = true;
    } else if (flag(*a, "--best-effort", NULL, &a)) {
      o->best_effort = true;
    } else if (flag(*a, "--uid", &v, &a)) {
      if (!parse_uint(v, 0x7fffffff, 10, &n)) refuse("usage", "bad --uid '%s'", v);
      o->uid = (int)n;
    } else if (flag(*a, "--gid", &v, &a)) {
      if (!parse_uint(v, 0x7fffffff, 10, &n)) refuse("usage", "bad --gid '%s'", v);
      o->gid = (int)n;
    } else if (flag(*a, "--umask", &v, &a)) {
      if (!parse_uint(v, 0777, 8, &n)) refuse("usage", "bad --umask '%s'", v);
      o->umask = (int)n;
    } else if (flag(*a, "--scratch", &v, &a)) {
      o->scratch = v;
    } else if (flag(*a, "--fs", &v, &a)) {
      if (o->fs_count == MAX_FS_RULES) refuse("usage", "more than %d --fs rules", MAX_FS_RULES);
      parse_fs(v, &o->fs[o->fs_count++]);
    } else if (flag(*a, "--bind-any", NULL, &a)) {
      o->bind_any = true;
    } else if (flag(*a, "--bind-ports", &v, &a)) {
      if (o->bind_count == MAX_PORT_RANGES)
        refuse("usage", "more than %d --bind-ports ranges", MAX_PORT_RANGES);
      parse_port_range(v, &o->bind[o->bind_count++]);
    } else if (flag(*a, "--max-abi", &v, &a)) {
      if (!parse_uint(v, 1000, 10, &n) || n == 0) refuse("usage", "bad --max-abi '%s'", v);
      o->max_abi = (int)n;
    } else if (flag(*a, "--protect-pid", &v, &a)) {
      if (o->protect_pid_count == MAX_PROTECT_ARGS)
        refuse("usage", "more than %d --protect-pid", MAX_PROTECT_ARGS);
      if (!parse_uint(v, 0x7fffffff, 10, &n) || n == 0) refuse("usage", "bad --protect-pid '%s'", v);
      o->protect_pids[o->protect_pid_count++] = (pid_t)n;
    } else if (flag(*a, "--cgroup", &v, &a)) {
      if (o->cgroup_count == MAX_CGROUPS) refuse("usage", "more than %d --cgroup", MAX_CGROUPS);
      if (v[0] != '/' || strstr(v, "..")) refuse("usage", "bad --cgroup '%s'", v);
      o->cgroups[o->cgroup_count++] = v;
    } else if (flag(*a, "--rlimit", &v, &a)) {
      /* NAME=VALUE, e.g. nofile=1024 */
      const char *eq = strchr(v, '=');
      char name[16];
      if (!eq || eq == v || (size_t)(eq - v) >= sizeof name || o->rlimit_count == MAX_RLIMITS)
        refuse("usage", "bad --rlimit '%s'", v);
      memcpy(name, v, eq - v);
      name[eq - v] = 0;
      int resource = rlimit_resource(name);
      char *end;
      errno = 0;
      unsigned long long value = strtoull(eq + 1, &end, 10);
      if (resource < 0 || errno || *end || eq[1] == 0) refuse("usage", "bad --rlimit '%s'", v);
      o->rlimits[o->rlimit_count].name = v;
      o->rlimits[o->rlimit_count].resource = resource;
      o->rlimits[o->rlimit_count++].value = value;
    } else if (flag(*a, "--oom-score-adj", &v, &a)) {
      char *end;
      long value = strtol(v, &end, 10);
      if (*end || value < 0 || value > 1000) refuse("usage", "bad --oom-score-adj '%s'", v);
      o->oom_score_adj = (int)value;
      o->oom_score_adj_set = true;
    } else if (flag(*a, "--ruleset-server", &v, &a)) {
      o->ruleset_server = v;
    } else if (flag(*a, "--ruleset-server-uid", &v, &a)) {
      if (!parse_uint(v, 0x7fffffff, 10, &n)) refuse("usage", "bad --ruleset-server-uid '%s'", v);
      o->ruleset_server_uid = (int)n;
    } else if (flag(*a, "--serve", &v, &a)) {
      o->serve = v;
    } else if (flag(*a, "--place-root", &v, &a)) {
      if (o->place_root_count == MAX_PLACE_ROOTS) refuse("usage", "too many --place-root");
      if (v[0] != '/') refuse("usage", "--place-root must be absolute");
      o->place_roots[o->place_root_count++] = v;
    } else if (flag(*a, "--tag", &v, &a)) {
      o->tag = v;
    } else {
      refuse("usage", "unknown option '%s'", *a);
    }
  }
  if (o->bind_any && o->bind_count > 0) refuse("usage", "--bind-any excludes --bind-ports");
  if (o->probe || o->serve) return;
  if (o->ruleset_server && o->ruleset_server_uid < 0) refuse("usage", "--ruleset-server needs --ruleset-server-uid");
  if (!o->argv || !o->argv[0]) refuse("usage", "no command after --");
  if (o->keep_identity) {
    if (o->uid != -1 || o->gid != -1) refuse("usage", "--keep-identity excludes --uid and --gid");
  } else if (o->uid <= 0 || o->gid <= 0) {
    refuse("identity", "--uid and --gid must be given and not 0 (or --keep-identity)");
  }
}

/* The agentsh proxy's port, from the command's own environment. Every proxy variable that is
 * set must name a loopback proxy; a command without one is refused, since it would otherwise
 * have no egress at all and the caller could not tell why. */
static void read_proxy_ports(struct options *o) {
  static const char *names[] = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                "http_proxy", "https_proxy", "all_proxy"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    const char *value = getenv(names[i]);
    if (!value || !*value) continue;
    const char *rest = value;
    if (strncmp(rest, "http://", 7) != 0)
      refuse("landlock-net", "%s=\"%s\": not an http:// proxy URL", names[i], value);
    rest += 7;
    const char *port;
    if (strncmp(rest, "127.0.0.1:", 10) == 0) port = rest + 10;
    else if (strncmp(rest, "localhost:", 10) == 0) port = rest + 10;
    else if (strncmp(rest, "[::1]:", 6) == 0) port = rest + 6;
    else refuse("landlock-net", "%s=\"%s\": the proxy is not on loopback", names[i], value);
    char digits[8];
    size_t n = strcspn(port, "/");
    if (n == 0 || n >= sizeof digits)
      refuse("landlock-net", "%s=\"%s\": bad port", names[i], value);
    memcpy(digits, port, n);
    digits[n] = 0;
    unsigned long p;
    if (!parse_uint(digits, 65535, 10, &p) || p == 0)
      refuse("landlock-net", "%s=\"%s\": bad port", names[i], value);
    bool seen = false;
    for (int k = 0; k < o->proxy_port_count; k++) seen |= o->proxy_ports[k] == p;
    if (!seen) {
      if (o->proxy_port_count == MAX_PROXY_PORTS) refuse("landlock-net", "too many proxy ports");
      o->proxy_ports[o->proxy_port_count++] = (uint16_t)p;
    }
  }
  if (o->proxy_port_count == 0)
    refuse("landlock-net",
           "no HTTP_PROXY/HTTPS_PROXY in the environment: the agentsh proxy port is unknown");
}

/* exec needs a path: resolve PROGRAM against the command's PATH. */
static const char *look_path(const char *prog) {
  if (strchr(prog, '/')) return prog;
  const char *path = getenv("PATH");
  if (!path || !*path) path = "/usr/bin:/bin";
  static char candidate[4096];
  for (const char *p = path; *p;) {
    size_t n = strcspn(p, ":");
    if (n > 0 && n + 1 + strlen(prog) < sizeof candidate) {
      memcpy(candidate, p, n);
      candidate[n] = '/';
      strcpy(candidate + n + 1, prog);
      struct stat st;
      if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111)) return candidate;
    }
    p += n;
    if (*p == ':') p++;
  }
  refuse("exec", "%s: not found in PATH", prog);
}

static void print_probe(int max_abi) {
  int kernel = landlock_abi(0);
  int abi = landlock_abi(max_abi);
#if defined(__x86_64__)
  const char *arch = "amd64";
#elif defined(__aarch64__)
  const char *arch = "arm64";
#else
  const char *arch = "unknown";
#endif
  printf("{\"landlockAbi\":%d,\"kernelLandlockAbi\":%d,\"landlockFs\":%s,\"landlockNet\":%s,"
         "\"ioctlDev\":%s,\"signalScope\":%s,\"exitRefused\":%d,\"architecture\":\"%s\"}\n",
         abi, kernel, abi >= 1 ? "true" : "false", abi >= 4 ? "true" : "false",
         abi >= 5 ? "true" : "false", abi >= 6 ? "true" : "false", EXIT_REFUSED, arch);
}

int main(int argc, char **argv) {
  static struct options o;
  parse_args(argc, argv, &o);
  if (o.probe) {
    print_probe(o.max_abi);
    return 0;
  }
  if (o.serve) serve(o.serve, &o);
  read_proxy_ports(&o);
  if (o.scratch) {
    /* A kept identity's scratch dir is still its own HOME/TMPDIR, owned by uid 0. */
    prepare_scratch(o.scratch, o.keep_identity ? 0 : o.uid, o.keep_identity ? 0 : o.gid);
    if (setenv("HOME", o.scratch, 1) != 0 || setenv("TMPDIR", o.scratch, 1) != 0)
      refuse("scratch", "setenv: %s", strerror(errno));
  }
  umask((mode_t)o.umask);
  const char *path = look_path(o.argv[0]);

  /* The rulesets, built by the ruleset server outside agentsh's sandbox (one round trip instead
   * of one per file rule); fetched while still root (its socket is not the command's to reach). */
  int abi = landlock_abi(o.max_abi);
  int rulesets[2] = {-1, -1};
  int ruleset_count = 0;
  /* Kept identity: every command is uid 0, so uids keep nothing apart. The guard protects what
   * is read now, before any restriction, with this process as the leader of its own group
   * (agentsh made it one already; a manual run is made one here). */
  static struct protected_ids protect;
  if (o.keep_identity && setpgid(0, 0) != 0 && errno != EPERM)
    refuse("guard", "setpgid: %s", strerror(errno));
  if (o.ruleset_server) {
    check_abi(abi, o.best_effort);
    ruleset_count = fetch_rulesets(&o, abi, rulesets, o.keep_identity ? &protect : NULL);
  } else if (o.keep_identity &&
             collect_protected(getpid(), o.protect_pids, o.protect_pid_count, &protect) != 0) {
    refuse("guard", "%s", guard_error);
  }

  /* While still root: the cgroups are root's to join. */
  apply_limits(&o);

  /* Landlock and seccomp need no_new_privs; it also keeps exec from granting privileges. */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    refuse("identity", "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
  if (o.keep_identity) drop_capabilities();
  else drop_identity(o.uid, o.gid);

  if (o.ruleset_server) {
    restrict_self(rulesets[0], "landlock-fs");
    if (ruleset_count > 1) restrict_self(rulesets[1], "landlock-net");
    for (int i = 0; i < ruleset_count; i++) close(rulesets[i]);
  } else {
    apply_landlock(&o);
  }
  apply_seccomp(o.udp, o.netlink_route, o.keep_identity ? &protect : NULL);

  /* Nothing the command was not meant to have: stdin, stdout and stderr only. Close-on-exec
   * rather than close, so that a failed exec can still report on stderr. */
  if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
    refuse("fds", "close_range: %s", strerror(errno));

  execve(path, o.argv, environ);
  refuse("exec", "%s: %s", path, strerror(errno));
}
