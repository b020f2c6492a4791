/*
 * What the process guard protects, where every governed command is uid 0 (a kept identity:
 * agentsh's seccomp supervisor must read the command's memory and lacks CAP_SYS_PTRACE). Uids
 * then keep nothing apart: any command could signal, renice or limit agentsh, the service or
 * init, also through any of their thread ids (a signal to one thread reaches the whole
 * process). Landlock's signal scope (ABI 6) covers signals only, and Render's kernel has ABI 5.
 * A seccomp user-notify supervisor of our own is not possible: agentsh-unixwrap's filter holds
 * the one listener a process may have (a second one gets EBUSY).
 *
 * So these are read at each launch: the launcher's ancestors up to init (the agentsh server, the
 * boot script's shells, init), the processes the service names (--protect-pid: the service
 * itself), every thread of each (/proc/<pid>/task), and each one's process group; by the ruleset
 * server (outside agentsh's sandbox, so no round trip per /proc read) or by the launcher itself.
 * The seccomp filter (seccomp.c) refuses any call that names one of them.
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

char guard_error[256];

static int add(pid_t *list, int *count, pid_t id, const char *what) {
  for (int i = 0; i < *count; i++) {
    if (list[i] == id) return 0;
  }
  if (*count == MAX_PROTECTED) {
    snprintf(guard_error, sizeof guard_error, "more than %d protected %s", MAX_PROTECTED, what);
    return -1;
  }
  list[(*count)++] = id;
  return 0;
}

/* The process, every thread of it, and its process group. */
static int protect_process(pid_t pid, pid_t pgrp, struct protected_ids *out) {
  if (add(out->ids, &out->count, pid, "thread ids") != 0) return -1;
  if (pgrp > 0 && add(out->groups, &out->group_count, pgrp, "process groups") != 0) return -1;
  char path[32];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *tasks = opendir(path);
  if (!tasks) {
    snprintf(guard_error, sizeof guard_error, "cannot list the threads of %d: %s", (int)pid,
             strerror(errno));
    return -1;
  }
  struct dirent *entry;
  int result = 0;
  while (result == 0 && (entry = readdir(tasks))) {
    char *end;
    long tid = strtol(entry->d_name, &end, 10);
    if (*end == 0 && tid > 0) result = add(out->ids, &out->count, (pid_t)tid, "thread ids");
  }
  closedir(tasks);
  return result;
}

int collect_protected(pid_t self, const pid_t *extra, int extra_count, struct protected_ids *out) {
  memset(out, 0, sizeof *out);
  pid_t self_ppid, self_pgrp;
  if (read_stat(self, &self_ppid, &self_pgrp) != 0) {
    snprintf(guard_error, sizeof guard_error, "cannot read /proc/%d/stat", (int)self);
    return -1;
  }
  /* Ancestors: agentsh (our parent), whatever started it, up to init. */
  pid_t p = self_ppid;
  for (int depth = 0; p > 0 && depth < 64; depth++) {
    pid_t ppid, pgrp;
    if (read_stat(p, &ppid, &pgrp) != 0) break; /* outside our pid namespace */
    if (protect_process(p, pgrp, out) != 0) return -1;
    if (p == 1) break;
    p = ppid;
  }
  /* init, whatever the chain looked like. */
  if (add(out->ids, &out->count, 1, "thread ids") != 0) return -1;
  for (int i = 0; i < extra_count; i++) {
    pid_t ppid, pgrp;
    if (read_stat(extra[i], &ppid, &pgrp) != 0) {
      snprintf(guard_error, sizeof guard_error, "--protect-pid %d: no such process", (int)extra[i]);
      return -1;
    }
    if (protect_process(extra[i], pgrp, out) != 0) return -1;
  }
  /* The command's own group (the launcher leads it) is its to signal; no protected process may
   * be in it. */
  for (int i = 0; i < out->group_count; i++) {
    if (out->groups[i] == self_pgrp) {
      snprintf(guard_error, sizeof guard_error,
               "the command's process group %d holds a protected process", (int)self_pgrp);
      return -1;
    }
  }
  return 0;
}
