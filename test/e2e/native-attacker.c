/*
 * A native attacker, compiled and run inside the governed workspace by the e2e suite
 * (native-attacker.test.ts). Each attempt prints one line: "<what>: refused (<errno name>)" when
 * the kernel said no, or "<what>: DONE" when the effect happened. The suite checks every line
 * and, outside, that no canary connection arrived and every target is alive.
 *
 * Usage: attacker APP_PID AGENTSH_PID INIT_SIGNAL APP_PORT OTHER_FILE
 *        attacker --fill-memory
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static void report(const char *what, int result) {
  if (result >= 0) printf("%s: DONE\n", what);
  else printf("%s: refused (%s)\n", what, strerrorname_np(errno));
  fflush(stdout);
}

static int tcp(const char *address, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, address, &to.sin_addr);
  int r = connect(fd, (struct sockaddr *)&to, sizeof to);
  int saved = errno;
  close(fd);
  errno = saved;
  return r;
}

static int udp_send(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(53)};
  inet_pton(AF_INET, "10.0.0.1", &to.sin_addr);
  int r = (int)sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof to);
  close(fd);
  return r;
}

static int read_file(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  char b[16];
  int r = (int)read(fd, b, sizeof b);
  close(fd);
  return r;
}

static int write_file(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

static int fill_memory(void) {
  /* 64 MiB at a time, touched, up to 4 GiB: past any per-command limit. */
  for (int i = 0; i < 64; i++) {
    char *block = malloc(64u << 20);
    if (!block) return -1;
    memset(block, 1, 64u << 20);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--fill-memory") == 0) {
    report("fill 4 GiB of memory", fill_memory());
    return 0;
  }
  if (argc != 6) return 2;
  pid_t app = atoi(argv[1]), agentsh = atoi(argv[2]);
  int init_signal = atoi(argv[3]), app_port = atoi(argv[4]);
  const char *other_file = argv[5];

  report("raw socket", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
  report("packet socket", socket(AF_PACKET, SOCK_RAW, 0));
  report("udp to 10.0.0.1:53", udp_send());
  report("tcp to 169.254.169.254:80", tcp("169.254.169.254", 80));
  report("tcp to 10.0.0.1:80", tcp("10.0.0.1", 80));
  report("tcp to the app on loopback", tcp("127.0.0.1", app_port));
  report("tcp to agentsh's API on loopback", tcp("127.0.0.1", 18080));
  report("kill the app", kill(app, SIGKILL));
  report("kill agentsh", kill(agentsh, SIGKILL));
  report("signal init", kill(1, init_signal));
  report("kill -1", kill(-1, SIGKILL));
  report("ptrace agentsh", (int)ptrace(PTRACE_ATTACH, agentsh, 0, 0));
  char buf[64];
  struct iovec local = {buf, sizeof buf}, remote = {(void *)0x400000, sizeof buf};
  report("process_vm_readv agentsh", (int)process_vm_readv(agentsh, &local, 1, &remote, 1, 0));
  report("mount tmpfs", mount("none", "/mnt", "tmpfs", 0, NULL));
  report("unshare user+mount namespaces", unshare(CLONE_NEWUSER | CLONE_NEWNS));
  int ns = open("/proc/1/ns/net", O_RDONLY);
  report("setns into init's network namespace", ns < 0 ? -1 : setns(ns, CLONE_NEWNET));
  report("read /etc/shadow", read_file("/etc/shadow"));
  report("read another session's file", read_file(other_file));
  report("write /usr/bin", write_file("/usr/bin/planted-by-attacker"));
  report("write /etc", write_file("/etc/planted-by-attacker"));
  return 0;
}
