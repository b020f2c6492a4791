/*
 * Landlock through its three raw syscalls (include/uapi/linux/landlock.h). The constants are
 * spelled out here: the build host's kernel headers may predate the ABI the target kernel has.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2

/* File-system rights, by the ABI that introduced them. */
#define FS_EXECUTE (1ULL << 0)
#define FS_WRITE_FILE (1ULL << 1)
#define FS_READ_FILE (1ULL << 2)
#define FS_READ_DIR (1ULL << 3)
#define FS_REMOVE_DIR (1ULL << 4)
#define FS_REMOVE_FILE (1ULL << 5)
#define FS_MAKE_CHAR (1ULL << 6)
#define FS_MAKE_DIR (1ULL << 7)
#define FS_MAKE_REG (1ULL << 8)
#define FS_MAKE_SOCK (1ULL << 9)
#define FS_MAKE_FIFO (1ULL << 10)
#define FS_MAKE_BLOCK (1ULL << 11)
#define FS_MAKE_SYM (1ULL << 12)
#define FS_REFER (1ULL << 13)    /* ABI 2 */
#define FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#define FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */

#define NET_BIND_TCP (1ULL << 0)    /* ABI 4 */
#define NET_CONNECT_TCP (1ULL << 1) /* ABI 4 */

#define SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define SCOPE_SIGNAL (1ULL << 1)               /* ABI 6 */

struct ll_ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};

struct ll_path_beneath_attr {
  uint64_t allowed_access;
  int32_t parent_fd;
} __attribute__((packed));

struct ll_net_port_attr {
  uint64_t allowed_access;
  uint64_t port;
};

/* Rights that apply to a file that is not a directory. */
#define FS_FILE_RIGHTS (FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV)

int landlock_abi(int max_abi) {
  long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
  if (v < 0) return 0;
  if (max_abi > 0 && v > max_abi) v = max_abi;
  return (int)v;
}

/* Every file-system right the ABI knows: all of them are restricted. */
static uint64_t handled_fs(int abi) {
  uint64_t r = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_READ_DIR | FS_REMOVE_DIR |
               FS_REMOVE_FILE | FS_MAKE_CHAR | FS_MAKE_DIR | FS_MAKE_REG | FS_MAKE_SOCK |
               FS_MAKE_FIFO | FS_MAKE_BLOCK | FS_MAKE_SYM;
  if (abi >= 2) r |= FS_REFER;
  if (abi >= 3) r |= FS_TRUNCATE;
  if (abi >= 5) r |= FS_IOCTL_DEV;
  return r;
}

/* What a --fs mode grants. Device nodes and block/char files are never made (mknod needs
 * CAP_MKNOD anyway); sockets and FIFOs are (dev servers, make's jobserver). */
static uint64_t granted(unsigned mode) {
  uint64_t r = 0;
  if (mode & FS_READ) r |= FS_READ_FILE | FS_READ_DIR;
  if (mode & FS_WRITE)
    r |= FS_WRITE_FILE | FS_TRUNCATE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR |
         FS_MAKE_REG | FS_MAKE_SOCK | FS_MAKE_FIFO | FS_MAKE_SYM | FS_REFER;
  if (mode & FS_EXEC) r |= FS_EXECUTE;
  if (mode & FS_IOCTL) r |= FS_IOCTL_DEV;
  return r;
}

char landlock_error[512];

static int fail(const char *format, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(landlock_error, sizeof landlock_error, format, args);
  va_end(args);
  return -1;
}

int open_rule_path(const char *path) {
  /* O_PATH: no access to the file is needed to name it in a rule. A path that does not exist
   * grants nothing (the service lists what existed at boot). */
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0 && errno != ENOENT && errno != ENOTDIR) return fail("open %s: %s", path, strerror(errno));
  return fd < 0 ? -2 : fd;
}

int add_path_rule(int ruleset, int fd, unsigned mode, const char *path, int abi) {
  struct stat st;
  /* fstat itself, not glibc's fstatat wrapper: agentsh intercepts newfstatat. */
  if (syscall(SYS_fstat, fd, &st) != 0) return fail("fstat %s: %s", path, strerror(errno));
  uint64_t access = granted(mode) & handled_fs(abi);
  if (!S_ISDIR(st.st_mode)) access &= FS_FILE_RIGHTS;
  if (access == 0) return 0;
  struct ll_path_beneath_attr attr = {.allowed_access = access, .parent_fd = fd};
  if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &attr, 0) != 0)
    return fail("landlock_add_rule(%s): %s", path, strerror(errno));
  return 0;
}

static int add_port_rule(int ruleset, uint64_t access, uint16_t port) {
  struct ll_net_port_attr attr = {.allowed_access = access, .port = port};
  if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &attr, 0) != 0)
    return fail("landlock_add_rule(port %u): %s", port, strerror(errno));
  return 0;
}

/* The command's own domain: every file-system right of the ABI, TCP connect (ABI >= 4) and
 * the scopes (ABI >= 6). Its rules are the --fs paths and the proxy port(s). */
int fs_ruleset(int abi) {
  struct ll_ruleset_attr attr = {.handled_access_fs = handled_fs(abi)};
  /* The kernel rejects a ruleset attribute larger than it knows with non-zero fields, so the
   * size follows the ABI. */
  size_t size = offsetof(struct ll_ruleset_attr, handled_access_net);
  if (abi >= 4) {
    attr.handled_access_net = NET_CONNECT_TCP;
    size = offsetof(struct ll_ruleset_attr, scoped);
  }
  if (abi >= 6) {
    attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL;
    size = sizeof attr;
  }
  long ruleset = syscall(SYS_landlock_create_ruleset, &attr, size, 0);
  if (ruleset < 0) return fail("landlock_create_ruleset: %s", strerror(errno));
  return (int)ruleset;
}

int add_connect_ports(int ruleset, const uint16_t *ports, int count, int abi) {
  if (abi < 4) return 0;
  for (int i = 0; i < count; i++) {
    if (add_port_rule(ruleset, NET_CONNECT_TCP, ports[i]) != 0) return -1;
  }
  return 0;
}

/* A second domain that handles TCP bind only: the allowed ports. It stacks on the command's
 * own (an intersection), so it can be built once and shared (the ruleset server). */
int bind_ruleset(int abi, const struct port_range *ranges, int count) {
  if (abi < 4) return -2;
  struct ll_ruleset_attr attr = {.handled_access_net = NET_BIND_TCP};
  long ruleset =
      syscall(SYS_landlock_create_ruleset, &attr, offsetof(struct ll_ruleset_attr, scoped), 0);
  if (ruleset < 0) return fail("landlock_create_ruleset(bind): %s", strerror(errno));
  for (int i = 0; i < count; i++) {
    for (uint32_t p = ranges[i].lo; p <= ranges[i].hi; p++) {
      if (add_port_rule((int)ruleset, NET_BIND_TCP, (uint16_t)p) != 0) {
        close((int)ruleset);
        return -1;
      }
    }
  }
  return (int)ruleset;
}

void restrict_self(int ruleset, const char *layer) {
  /* no_new_privs is set by main(); this thread is the only one, and it execs the command. */
  if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
    refuse(layer, "landlock_restrict_self: %s", strerror(errno));
}

void check_abi(int abi, bool best_effort) {
  if (abi < 1) refuse("landlock-fs", "the kernel has no Landlock (or it is disabled)");
  if (abi < 4 && !best_effort)
    refuse("landlock-net",
           "the kernel's Landlock ABI is %d; TCP port rules need ABI 4 (Linux 6.7)", abi);
}

/* Builds both domains here (without the ruleset server): one open per --fs path, each a round
 * trip to agentsh's file monitor. */
void apply_landlock(const struct options *o) {
  int abi = landlock_abi(o->max_abi);
  check_abi(abi, o->best_effort);
  int ruleset = fs_ruleset(abi);
  if (ruleset < 0) refuse("landlock-fs", "%s", landlock_error);
  for (int i = 0; i < o->fs_count; i++) {
    int fd = open_rule_path(o->fs[i].path);
    if (fd == -1) refuse("landlock-fs", "%s", landlock_error);
    if (fd < 0) continue;
    if (add_path_rule(ruleset, fd, o->fs[i].mode, o->fs[i].path, abi) != 0)
      refuse("landlock-fs", "%s", landlock_error);
    close(fd);
  }
  if (add_connect_ports(ruleset, o->proxy_ports, o->proxy_port_count, abi) != 0)
    refuse("landlock-net", "%s", landlock_error);
  int bind = o->bind_any ? -2 : bind_ruleset(abi, o->bind, o->bind_count);
  if (bind == -1) refuse("landlock-net", "%s", landlock_error);
  restrict_self(ruleset, "landlock-fs");
  close(ruleset);
  if (bind >= 0) {
    restrict_self(bind, "landlock-net");
    close(bind);
  }
}
