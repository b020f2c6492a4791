/*
 * The command's identity: an unprivileged uid, or uid 0 with no capability at all. Every step is
 * verified rather than assumed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

/* Locked so that nothing the command runs can turn them back: uid 0 gets no capabilities from
 * exec, none can be raised into the ambient set, and keep-caps cannot be set. */
#define SECUREBITS                                                                  \
  (SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |           \
   SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)

/* Empties the bounding set (dropping needs CAP_SETPCAP; a container started with no capability
 * has an empty one already) and the ambient set, and locks the securebits where allowed. */
static void drop_bounding_and_lock(void) {
  for (int cap = 0; cap < 64; cap++) {
    int in_bounding = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (in_bounding < 0) break; /* past the kernel's last capability */
    if (in_bounding && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
      refuse("capabilities", "prctl(PR_CAPBSET_DROP, %d): %s (needs CAP_SETPCAP)", cap,
             strerror(errno));
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    refuse("capabilities", "clearing the ambient set: %s", strerror(errno));
  /* Without CAP_SETPCAP (then the bounding set was empty from the start) the bits cannot be
   * set, and need not be: with no_new_privs and an empty bounding set nothing can ever gain a
   * capability. */
  if (prctl(PR_SET_SECUREBITS, SECUREBITS, 0, 0, 0) != 0 && errno != EPERM)
    refuse("capabilities", "prctl(PR_SET_SECUREBITS): %s", strerror(errno));
}

static void verify_no_capabilities(void) {
  struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &header, data) != 0)
    refuse("capabilities", "capget: %s", strerror(errno));
  for (int i = 0; i < 2; i++) {
    if (data[i].effective || data[i].permitted || data[i].inheritable)
      refuse("capabilities", "capabilities remain: effective/permitted/inheritable not empty");
  }
  for (int cap = 0; cap < 64; cap++) {
    int in_bounding = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (in_bounding < 0) break;
    if (in_bounding) refuse("capabilities", "capability %d remains in the bounding set", cap);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) > 0)
      refuse("capabilities", "capability %d remains in the ambient set", cap);
  }
}

void drop_capabilities(void) {
  drop_bounding_and_lock();
  struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2] = {{0}};
  if (syscall(SYS_capset, &header, data) != 0)
    refuse("capabilities", "capset(none): %s", strerror(errno));
  verify_no_capabilities();
}

/* setgroups([]), setresgid, setresuid through raw syscalls: this process has one thread, so
 * they change all of it. Changing all three uids away from 0 clears permitted and effective
 * capabilities; the bounding and ambient sets are emptied first, while that is still allowed. */
void drop_identity(int uid, int gid) {
  drop_bounding_and_lock();
  if (syscall(SYS_setgroups, 0, NULL) != 0) refuse("identity", "setgroups([]): %s", strerror(errno));
  if (syscall(SYS_setresgid, gid, gid, gid) != 0)
    refuse("identity", "setresgid(%d): %s", gid, strerror(errno));
  if (syscall(SYS_setresuid, uid, uid, uid) != 0)
    refuse("identity", "setresuid(%d): %s", uid, strerror(errno));
  uid_t r, e, s;
  gid_t rg, eg, sg;
  if (getresuid(&r, &e, &s) != 0 || (int)r != uid || (int)e != uid || (int)s != uid)
    refuse("identity", "uids are not %d after setresuid", uid);
  if (getresgid(&rg, &eg, &sg) != 0 || (int)rg != gid || (int)eg != gid || (int)sg != gid)
    refuse("identity", "gids are not %d after setresgid", gid);
  if (getgroups(0, NULL) != 0) refuse("identity", "supplementary groups remain");
  verify_no_capabilities();
}

/* Makes dir (HOME and TMPDIR of one identity) exist, owned by uid:gid, mode 0700, inside a
 * root-owned parent no one else may write to, so no other identity can plant or read anything
 * in it. Runs as root, before the identity is dropped. */
void prepare_scratch(const char *dir, int uid, int gid) {
  size_t len = strlen(dir);
  if (dir[0] != '/' || len < 2 || len >= 4096 || dir[len - 1] == '/' || strstr(dir, "//") ||
      strstr(dir, "/./") || strstr(dir, "/../"))
    refuse("scratch", "'%s' is not a clean absolute path", dir);
  /* Fast path, one syscall (each file syscall is a round trip to agentsh's file monitor): the
   * directory exists as this identity's own, mode 0700. Only root can have made it so, in the
   * root-owned parent that boot creates. */
  struct stat st;
  if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (int)st.st_uid == uid &&
      (int)st.st_gid == gid && (st.st_mode & 07777) == 0700)
    return;
  char parent[4096];
  strcpy(parent, dir);
  *strrchr(parent, '/') = 0;
  if (lstat(parent, &st) != 0) refuse("scratch", "lstat %s: %s", parent, strerror(errno));
  if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022))
    refuse("scratch", "%s must be a directory owned by root and writable only by root", parent);
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    refuse("scratch", "mkdir %s: %s", dir, strerror(errno));
  if (lstat(dir, &st) != 0) refuse("scratch", "lstat %s: %s", dir, strerror(errno));
  if (!S_ISDIR(st.st_mode)) refuse("scratch", "%s is not a directory", dir);
  if (((int)st.st_uid != uid || (int)st.st_gid != gid) && lchown(dir, uid, gid) != 0)
    refuse("scratch", "chown %s: %s", dir, strerror(errno));
  if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) != 0)
    refuse("scratch", "chmod %s: %s", dir, strerror(errno));
}
