/*
 * Landlock through its three raw syscalls (include/uapi/linux/landlock.h). The constants are
 * spelled out here: the build host's kernel headers may predate the ABI the target kernel has.
 */
#define _GNU_SOURCE
#include <errno.h>
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

static void add_path_rule(int ruleset, const struct fs_rule *rule, uint64_t handled) {
  /* O_PATH: no access to the file is needed to name it in a rule. */
  int fd = open(rule->path, O_PATH | O_CLOEXEC);
  if (fd < 0) {
    /* A path that does not exist grants nothing (the service lists what existed at boot). */
    if (errno == ENOENT || errno == ENOTDIR) return;
    refuse("landlock-fs", "open %s: %s", rule->path, strerror(errno));
  }
  struct stat st;
  /* fstat itself, not glibc's fstatat wrapper: agentsh intercepts newfstatat. */
  if (syscall(SYS_fstat, fd, &st) != 0)
    refuse("landlock-fs", "fstat %s: %s", rule->path, strerror(errno));
  uint64_t access = granted(rule->mode) & handled;
  if (!S_ISDIR(st.st_mode)) access &= FS_FILE_RIGHTS;
  if (access != 0) {
    struct ll_path_beneath_attr attr = {.allowed_access = access, .parent_fd = fd};
    if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &attr, 0) != 0)
      refuse("landlock-fs", "landlock_add_rule(%s): %s", rule->path, strerror(errno));
  }
  close(fd);
}

static void add_port_rule(int ruleset, uint64_t access, uint16_t port) {
  struct ll_net_port_attr attr = {.allowed_access = access, .port = port};
  if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &attr, 0) != 0)
    refuse("landlock-net", "landlock_add_rule(port %u): %s", port, strerror(errno));
}

void apply_landlock(const struct options *o) {
  int abi = landlock_abi(o->max_abi);
  if (abi < 1) refuse("landlock-fs", "the kernel has no Landlock (or it is disabled)");
  if (abi < 4 && !o->best_effort)
    refuse("landlock-net",
           "the kernel's Landlock ABI is %d; TCP port rules need ABI 4 (Linux 6.7)", abi);

  struct ll_ruleset_attr attr = {.handled_access_fs = handled_fs(abi)};
  /* The kernel rejects a ruleset attribute larger than it knows with non-zero fields, so the
   * size follows the ABI. */
  size_t size = offsetof(struct ll_ruleset_attr, handled_access_net);
  if (abi >= 4) {
    attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP;
    size = offsetof(struct ll_ruleset_attr, scoped);
  }
  if (abi >= 6) {
    attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL;
    size = sizeof attr;
  }
  long ruleset = syscall(SYS_landlock_create_ruleset, &attr, size, 0);
  if (ruleset < 0) refuse("landlock-fs", "landlock_create_ruleset: %s", strerror(errno));

  for (int i = 0; i < o->fs_count; i++) add_path_rule((int)ruleset, &o->fs[i], attr.handled_access_fs);
  if (abi >= 4) {
    for (int i = 0; i < o->proxy_port_count; i++)
      add_port_rule((int)ruleset, NET_CONNECT_TCP, o->proxy_ports[i]);
    for (int i = 0; i < o->bind_count; i++) {
      for (uint32_t p = o->bind[i].lo; p <= o->bind[i].hi; p++)
        add_port_rule((int)ruleset, NET_BIND_TCP, (uint16_t)p);
    }
  }
  /* no_new_privs is set by main(); this thread is the only one, and it execs the command. */
  if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
    refuse("landlock-fs", "landlock_restrict_self: %s", strerror(errno));
  close((int)ruleset);
}
