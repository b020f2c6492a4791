/*
 * agentsh-launch: shared declarations. See main.c for what the launcher does and why.
 */
#ifndef AGENTSH_LAUNCH_H
#define AGENTSH_LAUNCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The launcher's own exit code: nothing was executed. */
#define EXIT_REFUSED 122

#define MAX_FS_RULES 512
#define MAX_PORT_RANGES 64
#define MAX_PROXY_PORTS 8
#define MAX_PROTECTED 240
#define MAX_PROTECT_ARGS 8
#define MAX_PLACE_ROOTS 8
#define MAX_CGROUPS 4
#define MAX_RLIMITS 8

/* Landlock rights a file-system rule grants, by letter (see parse_fs_mode). */
enum fs_mode {
  FS_READ = 1 << 0,  /* r: read files, list directories */
  FS_WRITE = 1 << 1, /* w: write, truncate, create, remove, rename, link */
  FS_EXEC = 1 << 2,  /* x: execute */
  FS_IOCTL = 1 << 3, /* i: ioctl on devices (ABI >= 5) */
};

struct fs_rule {
  unsigned mode; /* enum fs_mode bits */
  const char *path;
};

struct port_range {
  uint16_t lo, hi;
};

struct options {
  /* identity */
  bool keep_identity;
  int uid, gid;
  int umask;
  const char *scratch; /* private HOME and TMPDIR, created if missing */
  /* Landlock: file system */
  struct fs_rule fs[MAX_FS_RULES];
  int fs_count;
  /* Landlock: network */
  struct port_range bind[MAX_PORT_RANGES];
  int bind_count;
  bool bind_any; /* --bind-any: no bind layer (the kernel's own rules; the service holds its ports) */
  uint16_t proxy_ports[MAX_PROXY_PORTS];
  int proxy_port_count;
  /* seccomp socket filter */
  bool udp;
  bool netlink_route;
  /* kernel support */
  bool best_effort;
  int max_abi; /* hold Landlock to this ABI (test profiles); 0 = the kernel's */
  /* limits (limits.c) */
  const char *cgroups[MAX_CGROUPS];
  int cgroup_count;
  struct {
    const char *name;
    int resource;
    unsigned long long value;
  } rlimits[MAX_RLIMITS];
  int rlimit_count;
  bool oom_score_adj_set;
  int oom_score_adj;
  /* ruleset server (server.c): the launcher asks it; --serve runs it */
  const char *ruleset_server;
  int ruleset_server_uid;
  const char *serve;
  const char *place_roots[MAX_PLACE_ROOTS];
  int place_root_count;
  /* guard: processes named by the service (--protect-pid), besides the launcher's ancestors */
  pid_t protect_pids[MAX_PROTECT_ARGS];
  int protect_pid_count;
  /* reporting */
  const char *tag;
  bool probe;
  char **argv; /* the program and its arguments */
};

/* The processes a command must not reach (guard.c collects them). */
struct protected_ids {
  pid_t ids[MAX_PROTECTED]; /* pids and thread ids */
  int count;
  pid_t groups[MAX_PROTECTED]; /* process group ids */
  int group_count;
};

/* Prints "agentsh-launch: refused: <layer>: <reason> (run <tag>)" and exits EXIT_REFUSED. */
_Noreturn void refuse(const char *layer, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
void set_refusal_tag(const char *tag);

/* main.c */
unsigned parse_fs_mode(const char *from, const char *to); /* 0 when not a mode */
const char *fs_mode_letters(unsigned mode);

/* landlock.c: builders return -1 with landlock_error set (the server must not exit). */
extern char landlock_error[512];
int landlock_abi(int max_abi); /* the ABI in force here (0: none) */
void check_abi(int abi, bool best_effort);
int open_rule_path(const char *path); /* O_PATH fd; -2 when missing; -1 on error */
int fs_ruleset(int abi);
int add_path_rule(int ruleset, int fd, unsigned mode, const char *path, int abi);
int add_connect_ports(int ruleset, const uint16_t *ports, int count, int abi);
int bind_ruleset(int abi, const struct port_range *ranges, int count); /* -2 below ABI 4 */
void restrict_self(int ruleset, const char *layer);
/* Builds and applies both domains here, without the server. */
void apply_landlock(const struct options *o);

/* limits.c */
int rlimit_resource(const char *name); /* -1 when unknown */
/* Joins the cgroups, sets the rlimits and the OOM score (before the identity is dropped). */
void apply_limits(const struct options *o);

/* server.c */
_Noreturn void serve(const char *socket_path, const struct options *o);
/* Asks the server for the rulesets (and, with protect, the protected ids). Returns how many
 * rulesets arrived in fds[]. */
int fetch_rulesets(const struct options *o, int abi, int fds[2], struct protected_ids *protect);

/* identity.c */
void prepare_scratch(const char *dir, int uid, int gid);
void drop_identity(int uid, int gid);   /* setresuid/gid to an unprivileged account */
void drop_capabilities(void);           /* stay uid 0, keep no capability */


/* seccomp.c */
/* Installs the socket filter and, with protect, the process guard. */
void apply_seccomp(bool udp, bool netlink_route, const struct protected_ids *protect);

/* guard.c */
/* The ancestors of `self` up to init (agentsh, the boot script...) and the given processes, with
 * every thread of each and their process groups. -1 with guard_error set on failure. */
extern char guard_error[256];
int collect_protected(pid_t self, const pid_t *extra, int extra_count, struct protected_ids *out);

#endif
