/*
 * What the process guard protects, where every governed command is uid 0 (a kept identity:
 * agentsh's seccomp supervisor must read the command's memory and lacks CAP_SYS_PTRACE). Uids
 * then keep nothing apart: any command could signal, renice or limit agentsh, the service or
 * init, also through any of their thread ids (a signal to one thread reaches the whole
 * process). Landlock's signal scope (ABI 6) covers signals only, and Render's kernel has ABI 5.
 * A seccomp user-notify supervisor of our own is not possible: agentsh-unixwrap's filter holds
 * the one listener a process may have (a second one gets EBUSY).
 *
 * So the launcher reads, before it restricts itself: its ancestors up to init (the agentsh
 * server, the boot script's shells, init), the processes the service names (--protect-pid: the
 * service itself), every thread of each (/proc/<pid>/task), and each one's process group. The
 * seccomp filter (seccomp.c) refuses any call that names one of them.
 *
 * Not covered, and reported as such: threads those processes create after the command started,
 * and other governed commands (all uid 0). The service runs the agentsh CLI under another,
 * unprivileged uid, so requests' CLI processes are protected by the kernel's uid check.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher.h"

/* Parent and process group of pid, from /proc/<pid>/stat. Returns -1 when it is gone. */
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

static void add(pid_t *list, int *count, pid_t id, const char *what) {
  for (int i = 0; i < *count; i++) {
    if (list[i] == id) return;
  }
  if (*count == MAX_PROTECTED) refuse("guard", "more than %d protected %s", MAX_PROTECTED, what);
  list[(*count)++] = id;
}

/* The process, every thread of it, and its process group. */
static void protect_process(pid_t pid, pid_t pgrp, struct protected_ids *out) {
  add(out->ids, &out->count, pid, "thread ids");
  if (pgrp > 0) add(out->groups, &out->group_count, pgrp, "process groups");
  char path[32];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *tasks = opendir(path);
  if (!tasks) refuse("guard", "cannot list the threads of %d: %s", (int)pid, strerror(errno));
  struct dirent *entry;
  while ((entry = readdir(tasks))) {
    char *end;
    long tid = strtol(entry->d_name, &end, 10);
    if (*end == 0 && tid > 0) add(out->ids, &out->count, (pid_t)tid, "thread ids");
  }
  closedir(tasks);
}

void collect_protected(const pid_t *extra, int extra_count, struct protected_ids *out) {
  memset(out, 0, sizeof *out);
  pid_t self_ppid, self_pgrp;
  if (read_stat(getpid(), &self_ppid, &self_pgrp) != 0)
    refuse("guard", "cannot read /proc/self/stat: %s", strerror(errno));
  /* Ancestors: agentsh (our parent), whatever started it, up to init. */
  pid_t p = self_ppid;
  for (int depth = 0; p > 0 && depth < 64; depth++) {
    pid_t ppid, pgrp;
    if (read_stat(p, &ppid, &pgrp) != 0) break; /* outside our pid namespace */
    protect_process(p, pgrp, out);
    if (p == 1) break;
    p = ppid;
  }
  /* init, whatever the chain looked like. */
  add(out->ids, &out->count, 1, "thread ids");
  for (int i = 0; i < extra_count; i++) {
    pid_t ppid, pgrp;
    if (read_stat(extra[i], &ppid, &pgrp) != 0)
      refuse("guard", "--protect-pid %d: no such process", (int)extra[i]);
    protect_process(extra[i], pgrp, out);
  }
  /* The command's own group (the launcher leads it) is its to signal; no protected process may
   * be in it. */
  for (int i = 0; i < out->group_count; i++) {
    if (out->groups[i] == self_pgrp)
      refuse("guard", "the command's process group %d holds a protected process", (int)self_pgrp);
  }
}
