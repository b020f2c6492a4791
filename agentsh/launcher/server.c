/*
 * The ruleset server: builds each command's Landlock rulesets outside agentsh's sandbox and hands
 * them to the launcher as file descriptors.
 *
 * Why: inside agentsh's sandbox every open is a round trip to its seccomp file monitor (measured:
 * the bundle's ~70 file rules cost the launcher about 6 ms per command when it opens them
 * itself). Here the static paths are opened once, at start, and a ruleset is a few dozen
 * landlock_add_rule calls (microseconds). TCP bind rules, when given (--bind-ports), are a
 * second ruleset built once and shared: it handles bind only, so it stacks on the command's own
 * domain as an intersection. Building it once does not make it free: landlock_restrict_self
 * copies every rule into the new domain (measured: 0.017 ms for 144 ports, 17.5 ms for 64,512),
 * which is why the bundle's default is --bind-any.
 *
 * Why it is safe: a Landlock ruleset can only take rights away. Whoever obtains one can restrict
 * itself further and nothing else. The socket lives in a directory only the server's uid (and
 * root) can enter, and the launcher checks the peer's uid.
 *
 * Protocol (SOCK_SEQPACKET, one request, one answer): the request is lines "abi=N",
 * "fs=MODE:PATH" (the command's own places; each must lie under a --place-root) and
 * "connect=PORT" (the agentsh proxy's), and for a kept identity "protect=1" and "protect-pid=PID"
 * (guard.c: the server reads the launcher's ancestors, found by its socket peer's pid, and their
 * threads from /proc); the answer is "ok N [ids=…] [groups=…]" with N rulesets attached
 * (SCM_RIGHTS: the command's own, then the bind ruleset when there is one and the ABI has TCP
 * rules), or
 * "error <reason>".
 *
 * Usage: agentsh-launch --serve=SOCKET [--fs=MODE:PATH]... [--bind-ports=LO-HI... | --bind-any]
 *          [--place-root=DIR]... [--max-abi=N] [--best-effort]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "launcher.h"

#define MAX_REQUEST 8192
#define MAX_REPLY 8192
#define MAX_REQUEST_FS 8

struct cached_rule {
  int fd;
  unsigned mode;
  const char *path;
};

static struct cached_rule cached[MAX_FS_RULES];
static int cached_count;

/* Absolute, clean, and under one of the roots. */
static bool allowed_place(const char *path, const struct options *o) {
  size_t len = strlen(path);
  if (path[0] != '/' || len >= 4096 || strstr(path, "//") || strstr(path, "/./") ||
      strstr(path, "/../") || (len >= 3 && strcmp(path + len - 3, "/..") == 0) ||
      (len >= 2 && strcmp(path + len - 2, "/.") == 0))
    return false;
  for (int i = 0; i < o->place_root_count; i++) {
    size_t n = strlen(o->place_roots[i]);
    if (strncmp(path, o->place_roots[i], n) == 0 && (path[n] == '/' || path[n] == 0)) return true;
  }
  return false;
}

static void answer(int conn, const char *text, const int *fds, int fd_count) {
  struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(2 * sizeof(int))];
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd_count > 0) {
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(fd_count * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fd_count * sizeof(int));
    memcpy(CMSG_DATA(c), fds, fd_count * sizeof(int));
  }
  (void)sendmsg(conn, &msg, MSG_NOSIGNAL);
}

static void serve_one(int conn, const struct options *o, int abi, int bind_fd) {
  char request[MAX_REQUEST + 1];
  ssize_t n = recv(conn, request, MAX_REQUEST, 0);
  if (n <= 0) return;
  request[n] = 0;
  struct fs_rule places[MAX_REQUEST_FS];
  int place_count = 0;
  uint16_t ports[MAX_PROXY_PORTS];
  int port_count = 0;
  int requested_abi = -1;
  bool protect = false;
  pid_t protect_pids[MAX_PROTECT_ARGS];
  int protect_pid_count = 0;
  char error[600];
  for (char *line = strtok(request, "\n"); line; line = strtok(NULL, "\n")) {
    unsigned long v;
    char *end;
    if (strncmp(line, "abi=", 4) == 0) {
      v = strtoul(line + 4, &end, 10);
      if (*end) { answer(conn, "error bad abi", NULL, 0); return; }
      requested_abi = (int)v;
    } else if (strncmp(line, "connect=", 8) == 0) {
      v = strtoul(line + 8, &end, 10);
      if (*end || v == 0 || v > 65535 || port_count == MAX_PROXY_PORTS)
        { answer(conn, "error bad connect port", NULL, 0); return; }
      ports[port_count++] = (uint16_t)v;
    } else if (strcmp(line, "protect=1") == 0) {
      protect = true;
    } else if (strncmp(line, "protect-pid=", 12) == 0) {
      v = strtoul(line + 12, &end, 10);
      if (*end || v == 0 || v > 0x7fffffff || protect_pid_count == MAX_PROTECT_ARGS)
        { answer(conn, "error bad protect-pid", NULL, 0); return; }
      protect_pids[protect_pid_count++] = (pid_t)v;
    } else if (strncmp(line, "fs=", 3) == 0) {
      char *colon = strchr(line + 3, ':');
      unsigned mode = colon ? parse_fs_mode(line + 3, colon) : 0;
      if (!mode || place_count == MAX_REQUEST_FS || !allowed_place(colon + 1, o)) {
        snprintf(error, sizeof error, "error not a place commands may have: %.500s", line + 3);
        { answer(conn, error, NULL, 0); return; }
      }
      places[place_count++] = (struct fs_rule){.mode = mode, .path = colon + 1};
    } else {
      { answer(conn, "error unknown request line", NULL, 0); return; }
    }
  }
  if (requested_abi != abi) {
    snprintf(error, sizeof error, "error the launcher uses Landlock ABI %d, the server %d",
             requested_abi, abi);
    { answer(conn, error, NULL, 0); return; }
  }
  int ruleset = fs_ruleset(abi);
  bool ok = ruleset >= 0;
  for (int i = 0; ok && i < cached_count; i++)
    ok = add_path_rule(ruleset, cached[i].fd, cached[i].mode, cached[i].path, abi) == 0;
  for (int i = 0; ok && i < place_count; i++) {
    int fd = open_rule_path(places[i].path);
    if (fd == -2) {
      snprintf(landlock_error, sizeof landlock_error, "%s does not exist", places[i].path);
      ok = false;
    } else if (fd < 0) {
      ok = false;
    } else {
      ok = add_path_rule(ruleset, fd, places[i].mode, places[i].path, abi) == 0;
      close(fd);
    }
  }
  ok = ok && add_connect_ports(ruleset, ports, port_count, abi) == 0;
  static char reply[MAX_REPLY];
  int len = snprintf(reply, sizeof reply, "ok %d", bind_fd >= 0 ? 2 : 1);
  if (ok && protect) {
    struct ucred peer;
    socklen_t peer_len = sizeof peer;
    static struct protected_ids ids;
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) != 0 ||
        collect_protected(peer.pid, protect_pids, protect_pid_count, &ids) != 0) {
      snprintf(landlock_error, sizeof landlock_error, "guard: %s", guard_error);
      ok = false;
    } else {
      len += snprintf(reply + len, sizeof reply - len, " ids=");
      for (int i = 0; i < ids.count; i++)
        len += snprintf(reply + len, sizeof reply - len, "%s%d", i ? "," : "", (int)ids.ids[i]);
      len += snprintf(reply + len, sizeof reply - len, " groups=");
      for (int i = 0; i < ids.group_count; i++)
        len += snprintf(reply + len, sizeof reply - len, "%s%d", i ? "," : "", (int)ids.groups[i]);
    }
  }
  if (!ok) {
    snprintf(error, sizeof error, "error %.500s", landlock_error);
    answer(conn, error, NULL, 0);
  } else {
    int fds[2] = {ruleset, bind_fd};
    answer(conn, reply, fds, bind_fd >= 0 ? 2 : 1);
  }
  if (ruleset >= 0) close(ruleset);
}

_Noreturn void serve(const char *socket_path, const struct options *o) {
  signal(SIGPIPE, SIG_IGN);
  int abi = landlock_abi(o->max_abi);
  check_abi(abi, o->best_effort);
  for (int i = 0; i < o->fs_count; i++) {
    int fd = open_rule_path(o->fs[i].path);
    if (fd == -1) refuse("landlock-fs", "%s", landlock_error);
    if (fd < 0) continue;
    cached[cached_count++] = (struct cached_rule){.fd = fd, .mode = o->fs[i].mode, .path = o->fs[i].path};
  }
  int bind_fd = o->bind_any ? -2 : bind_ruleset(abi, o->bind, o->bind_count);
  if (bind_fd == -1) refuse("landlock-net", "%s", landlock_error);

  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(socket_path) >= sizeof addr.sun_path) refuse("serve", "socket path too long");
  strcpy(addr.sun_path, socket_path);
  int listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (listener < 0) refuse("serve", "socket: %s", strerror(errno));
  unlink(socket_path);
  mode_t old = umask(077);
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0)
    refuse("serve", "bind %s: %s", socket_path, strerror(errno));
  umask(old);
  if (listen(listener, 64) != 0) refuse("serve", "listen: %s", strerror(errno));
  dprintf(1, "{\"ruleset_server\":\"%s\",\"landlockAbi\":%d,\"fileRules\":%d,\"bindRules\":%s}\n",
          socket_path, abi, cached_count, bind_fd >= 0 ? "true" : "false");
  for (;;) {
    int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      refuse("serve", "accept: %s", strerror(errno));
    }
    /* A client that never writes cannot hold the server: one second per request. */
    struct pollfd pfd = {.fd = conn, .events = POLLIN};
    if (poll(&pfd, 1, 1000) == 1) serve_one(conn, o, abi, bind_fd);
    close(conn);
  }
}

/* The launcher's side: asks the server for its rulesets. Returns how many arrived (fds[]). */
/* "1,2,3" after `key` in the reply, into list. */
static void parse_ids(const char *reply, const char *key, pid_t *list, int *count) {
  const char *at = strstr(reply, key);
  *count = 0;
  if (!at) refuse("guard", "the ruleset server sent no %s", key);
  for (const char *p = at + strlen(key); *p && *p != ' ';) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v <= 0 || *count == MAX_PROTECTED) refuse("guard", "bad %s from the server", key);
    list[(*count)++] = (pid_t)v;
    p = *end == ',' ? end + 1 : end;
  }
}

int fetch_rulesets(const struct options *o, int abi, int fds[2], struct protected_ids *protect) {
  char request[MAX_REQUEST];
  int len = snprintf(request, sizeof request, "abi=%d\n", abi);
  if (protect) {
    len += snprintf(request + len, sizeof request - len, "protect=1\n");
    for (int i = 0; i < o->protect_pid_count; i++)
      len += snprintf(request + len, sizeof request - len, "protect-pid=%d\n", (int)o->protect_pids[i]);
  }
  for (int i = 0; i < o->fs_count; i++) {
    const char *letters = fs_mode_letters(o->fs[i].mode);
    len += snprintf(request + len, sizeof request - len, "fs=%s:%s\n", letters, o->fs[i].path);
  }
  for (int i = 0; i < o->proxy_port_count; i++)
    len += snprintf(request + len, sizeof request - len, "connect=%u\n", o->proxy_ports[i]);
  if (len >= (int)sizeof request) refuse("landlock-fs", "ruleset request too long");

  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(o->ruleset_server) >= sizeof addr.sun_path) refuse("landlock-fs", "socket path too long");
  strcpy(addr.sun_path, o->ruleset_server);
  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (sock < 0) refuse("landlock-fs", "socket: %s", strerror(errno));
  if (connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0)
    refuse("landlock-fs", "the ruleset server %s is unreachable: %s", o->ruleset_server,
           strerror(errno));
  struct ucred peer;
  socklen_t peer_len = sizeof peer;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) != 0 ||
      (int)peer.uid != o->ruleset_server_uid)
    refuse("landlock-fs", "the ruleset server is not uid %d", o->ruleset_server_uid);
  if (send(sock, request, len, MSG_NOSIGNAL) != len)
    refuse("landlock-fs", "sending to the ruleset server: %s", strerror(errno));

  static char reply[MAX_REPLY + 1];
  struct iovec iov = {.iov_base = reply, .iov_len = MAX_REPLY};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(2 * sizeof(int))];
  } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf};
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  close(sock);
  if (n <= 0) refuse("landlock-fs", "no answer from the ruleset server");
  reply[n] = 0;
  if (strncmp(reply, "ok ", 3) != 0) refuse("landlock-fs", "ruleset server: %s", reply);
  int want = atoi(reply + 3);
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (want < 1 || want > 2 || !c || c->cmsg_type != SCM_RIGHTS ||
      c->cmsg_len != CMSG_LEN(want * sizeof(int)))
    refuse("landlock-fs", "the ruleset server sent no ruleset");
  memcpy(fds, CMSG_DATA(c), want * sizeof(int));
  if (protect) {
    parse_ids(reply, " ids=", protect->ids, &protect->count);
    parse_ids(reply, " groups=", protect->groups, &protect->group_count);
  }
  return want;
}
