/*
 * The process-control guard, for a kept identity (every governed command is uid 0 without
 * capabilities, because agentsh's seccomp supervisor must read its memory and lacks
 * CAP_SYS_PTRACE). Uids then separate nothing: any command could signal, renice or prlimit any
 * other command, agentsh, the service or init, also through one of their thread ids. Landlock's
 * signal scope (ABI 6) covers signals only, and Render's kernel has ABI 5.
 *
 * So the seccomp filter (seccomp.c) sends every call that names another process to this guard,
 * a child forked by the launcher before it restricted itself, through a seccomp user-notify fd.
 * The guard allows a call only when its target is the command itself or one of its
 * descendants: it walks the target's parent chain in /proc up to the command (the launcher sets
 * itself as child subreaper, so orphans stay in the tree). A process group is judged by its
 * leader. kill(-1) and anything else is refused with EPERM (ESRCH for a pid that does not
 * exist, as the kernel would answer).
 *
 * Allowed calls continue in the kernel with their own arguments (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
 * The arguments are integers in registers, not memory the caller could change after the check;
 * the kernel allocates pids cyclically, so a target that exits between the check and the call
 * cannot be replaced by another process in that window.
 *
 * When the guard is gone (killed), the kernel answers every guarded call with ENOSYS: it fails
 * closed. It exits by itself when no process uses the filter any more.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_sched_setattr
#define SYS_sched_setattr 314
#endif
#define IOPRIO_WHO_PGRP 2

static void guard_fail(const char *what) {
  dprintf(2, "agentsh-launch: guard: %s: %s\n", what, strerror(errno));
  _exit(1);
}

/* Parent and process group of pid (a thread id works too), from /proc/<pid>/stat.
 * Returns 0, or -1 when there is no such process. */
static int read_stat(pid_t pid, pid_t *ppid, pid_t *pgrp) {
  char path[32], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  /* "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses. */
  char *end = strrchr(buf, ')');
  int p, g;
  char state;
  if (!end || sscanf(end + 1, " %c %d %d", &state, &p, &g) != 3) return -1;
  *ppid = p;
  *pgrp = g;
  return 0;
}

enum verdict { ALLOW, DENY, NO_SUCH };

/* Whether target is root or one of its descendants. */
static enum verdict in_tree(pid_t target, pid_t root) {
  pid_t p = target, ppid, pgrp;
  if (target <= 0) return DENY;
  for (int depth = 0; depth < 4096; depth++) {
    if (p == root) return ALLOW;
    if (p <= 1) return DENY;
    if (read_stat(p, &ppid, &pgrp) != 0) return depth == 0 ? NO_SUCH : DENY;
    p = ppid;
  }
  return DENY;
}

/* A process group, judged by its leader (the process whose pid is the group id). */
static enum verdict group_in_tree(pid_t pgid, pid_t root) {
  enum verdict v = in_tree(pgid, root);
  return v == NO_SUCH ? DENY : v;
}

static enum verdict callers_group(pid_t caller, pid_t root) {
  pid_t ppid, pgrp;
  if (read_stat(caller, &ppid, &pgrp) != 0) return DENY;
  return group_in_tree(pgrp, root);
}

static enum verdict decide(const struct seccomp_notif *req, pid_t root, pid_t self) {
  const __u64 *a = req->data.args;
  int arg0 = (int)a[0], arg1 = (int)a[1], arg2 = (int)a[2];
  pid_t target;
  switch (req->data.nr) {
    case SYS_kill:
      if (arg0 == -1) return DENY;
      if (arg0 == 0) return callers_group((pid_t)req->pid, root);
      if (arg0 < 0) return group_in_tree(-arg0, root);
      target = arg0;
      break;
    case SYS_tkill:
    case SYS_tgkill:
    case SYS_rt_sigqueueinfo:
    case SYS_rt_tgsigqueueinfo:
    case SYS_pidfd_open:
    case SYS_prlimit64:
    case SYS_sched_setaffinity:
    case SYS_sched_setscheduler:
    case SYS_sched_setparam:
    case SYS_sched_setattr:
      target = arg0;
      break;
    case SYS_fcntl: /* F_SETOWN: a pid, or a process group as a negative number */
      if (arg2 == 0) return ALLOW;
      if (arg2 < 0) return group_in_tree(-arg2, root);
      target = arg2;
      break;
    case SYS_setpriority: /* PRIO_PROCESS (who != 0) or PRIO_PGRP */
    case SYS_ioprio_set:  /* IOPRIO_WHO_PROCESS (who != 0) or IOPRIO_WHO_PGRP */
      if ((req->data.nr == SYS_setpriority && arg0 == PRIO_PGRP) ||
          (req->data.nr == SYS_ioprio_set && arg0 == IOPRIO_WHO_PGRP))
        return arg1 == 0 ? callers_group((pid_t)req->pid, root) : group_in_tree(arg1, root);
      target = arg1;
      break;
    default:
      return DENY;
  }
  if (target == self) return DENY;
  return in_tree(target, root);
}

static int receive_fd(int sock) {
  char data;
  struct iovec iov = {.iov_base = &data, .iov_len = 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf};
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n <= 0) _exit(0); /* the launcher refused before sending: nothing to guard */
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
    guard_fail("no notification fd received");
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

static _Noreturn void guard_main(int sock, pid_t root) {
  pid_t self = getpid();
  /* Out of the command's process group: a kill(0) or killpg of the command does not reach
   * it (a direct kill by pid is refused below). */
  setpgid(0, 0);
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_IGN);
  }
  /* The guard needs no privilege: reading /proc/<pid>/stat of a uid-0 process is allowed to
   * uid 0 without capabilities. */
  struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct none[2] = {{0}};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) guard_fail("no_new_privs");
  if (syscall(SYS_capset, &header, none) != 0) guard_fail("capset");

  int fd = receive_fd(sock);
  close(sock);
  /* Quiet from here on: the command's stdout and stderr are not the guard's to hold open. */
  close(0);
  close(1);
  close(2);

  struct seccomp_notif_sizes sizes;
  if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0) _exit(1);
  struct seccomp_notif *req = calloc(1, sizes.seccomp_notif > sizeof *req ? sizes.seccomp_notif : sizeof *req);
  struct seccomp_notif_resp *resp =
      calloc(1, sizes.seccomp_notif_resp > sizeof *resp ? sizes.seccomp_notif_resp : sizeof *resp);
  if (!req || !resp) _exit(1);

  for (;;) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    if (!(pfd.revents & POLLIN)) _exit(0); /* POLLHUP: no process uses the filter any more */
    memset(req, 0, sizes.seccomp_notif);
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
      if (errno == EINTR || errno == ENOENT) continue;
      _exit(1);
    }
    enum verdict v = decide(req, root, self);
    memset(resp, 0, sizes.seccomp_notif_resp);
    resp->id = req->id;
    if (v == ALLOW) resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    else resp->error = v == NO_SUCH ? -ESRCH : -EPERM;
    /* ENOENT: the caller is gone (killed while waiting); nothing to answer. */
    (void)ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
  }
}

int start_guard(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    refuse("guard", "socketpair: %s", strerror(errno));
  pid_t root = getpid();
  pid_t pid = fork();
  if (pid < 0) refuse("guard", "fork: %s", strerror(errno));
  if (pid == 0) {
    close(sv[0]);
    guard_main(sv[1], root);
  }
  close(sv[1]);
  return sv[0];
}

void send_guard_fd(int sock, int notify_fd) {
  char data = 'g';
  struct iovec iov = {.iov_base = &data, .iov_len = 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &notify_fd, sizeof notify_fd);
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != 1) refuse("guard", "handing the notification fd to the guard: %s", strerror(errno));
}
