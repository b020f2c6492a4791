/*
 * One classic BPF program for seccomp, built by a tiny label assembler.
 *
 * socket(2), by family, type and protocol:
 *   AF_UNIX                                     allowed
 *   AF_INET/AF_INET6 SOCK_STREAM, proto 0/TCP   allowed (Landlock then limits connect/bind ports)
 *   AF_INET/AF_INET6 SOCK_DGRAM,  proto 0/UDP   allowed only with --udp
 *   AF_NETLINK, NETLINK_ROUTE only              allowed only with --netlink-route (getifaddrs)
 *   anything else (raw, packet, MPTCP, SCTP, ICMP, other families)   EACCES
 * io_uring_setup is refused too: io_uring can open sockets without socket(2). A syscall from a
 * foreign architecture (32-bit compat, x32) is refused as a whole.
 *
 * With the guard (a kept identity: every command is uid 0), the calls that act on another
 * process by its id go to the guard process for a decision (guard.c): kill, tkill, tgkill,
 * rt_sigqueueinfo, rt_tgsigqueueinfo, pidfd_open, fcntl(F_SETOWN), and prlimit64,
 * setpriority, sched_set{affinity,scheduler,param,attr} and ioprio_set when they name another
 * process. Ways to name a target the guard cannot read (a pointer argument) are refused:
 * fcntl(F_SETOWN_EX), ioctl(FIOSETOWN/SIOCSPGRP), setpriority/ioprio_set by user.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

#if defined(__x86_64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_X86_64
#define FOREIGN_SYSCALL_BIT 0x40000000U /* x32 syscalls carry it */
#elif defined(__aarch64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_AARCH64
#define FOREIGN_SYSCALL_BIT 0U
#else
#error "agentsh-launch supports x86_64 and aarch64"
#endif

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_sched_setattr
#define SYS_sched_setattr 314
#endif
#ifndef F_SETOWN_EX
#define F_SETOWN_EX 15
#endif
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_WHO_PGRP 2

#define RET_ALLOW SECCOMP_RET_ALLOW
#define RET_EACCES (SECCOMP_RET_ERRNO | (EACCES & SECCOMP_RET_DATA))
#define RET_EPERM (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
#define RET_NOTIFY SECCOMP_RET_USER_NOTIF

#define OFF_NR offsetof(struct seccomp_data, nr)
#define OFF_ARCH offsetof(struct seccomp_data, arch)
/* The low 32 bits of an argument on a little-endian machine: every argument checked here is an
 * int (pid, family, command) that the kernel truncates to 32 bits itself. */
#define OFF_ARG(n) (offsetof(struct seccomp_data, args) + 8 * (n))

#define MAX_INSNS 200
#define MAX_LABELS 40

struct program {
  struct sock_filter insns[MAX_INSNS];
  int count;
  const char *jt[MAX_INSNS], *jf[MAX_INSNS]; /* label names, resolved by build() */
  const char *label_names[MAX_LABELS];
  int label_at[MAX_LABELS];
  int labels;
};

static void stmt(struct program *p, uint16_t code, uint32_t k) {
  if (p->count == MAX_INSNS) refuse("seccomp", "BPF program too long");
  p->jt[p->count] = p->jf[p->count] = NULL;
  p->insns[p->count++] = (struct sock_filter)BPF_STMT(code, k);
}

/* A conditional jump; NULL falls through. */
static void jump(struct program *p, uint16_t code, uint32_t k, const char *if_true,
                 const char *if_false) {
  stmt(p, code, k);
  p->jt[p->count - 1] = if_true;
  p->jf[p->count - 1] = if_false;
}

static void label(struct program *p, const char *name) {
  if (p->labels == MAX_LABELS) refuse("seccomp", "too many BPF labels");
  p->label_names[p->labels] = name;
  p->label_at[p->labels++] = p->count;
}

static int offset_to(const struct program *p, int at, const char *name) {
  if (!name) return 0;
  for (int i = 0; i < p->labels; i++) {
    if (strcmp(p->label_names[i], name) == 0) {
      int off = p->label_at[i] - at - 1;
      if (off < 0 || off > 255) refuse("seccomp", "BPF jump to %s out of range", name);
      return off;
    }
  }
  refuse("seccomp", "BPF label %s undefined", name);
}

static void build(struct program *p) {
  for (int i = 0; i < p->count; i++) {
    if (BPF_CLASS(p->insns[i].code) != BPF_JMP) continue;
    p->insns[i].jt = (uint8_t)offset_to(p, i, p->jt[i]);
    p->insns[i].jf = (uint8_t)offset_to(p, i, p->jf[i]);
  }
}

#define LD(p, off) stmt(p, BPF_LD | BPF_W | BPF_ABS, (uint32_t)(off))
#define JEQ(p, k, t, f) jump(p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(k), t, f)
#define JGE(p, k, t, f) jump(p, BPF_JMP | BPF_JGE | BPF_K, (uint32_t)(k), t, f)
#define AND(p, k) stmt(p, BPF_ALU | BPF_AND | BPF_K, (uint32_t)(k))
#define RET(p, k) stmt(p, BPF_RET | BPF_K, (uint32_t)(k))

static void socket_rules(struct program *p, bool udp, bool netlink_route) {
  label(p, "socket");
  LD(p, OFF_ARG(0));
  JEQ(p, AF_UNIX, "allow", NULL);
  JEQ(p, AF_INET, "inet", NULL);
  JEQ(p, AF_INET6, "inet", NULL);
  JEQ(p, AF_NETLINK, netlink_route ? "netlink" : "eacces", "eacces");

  label(p, "inet");
  LD(p, OFF_ARG(1));
  AND(p, 0xf); /* SOCK_NONBLOCK and SOCK_CLOEXEC live above the type */
  JEQ(p, SOCK_STREAM, "stream", NULL);
  JEQ(p, SOCK_DGRAM, udp ? "dgram" : "eacces", "eacces");

  label(p, "stream");
  LD(p, OFF_ARG(2));
  JEQ(p, 0, "allow", NULL);
  JEQ(p, IPPROTO_TCP, "allow", "eacces");

  label(p, "dgram");
  LD(p, OFF_ARG(2));
  JEQ(p, 0, "allow", NULL);
  JEQ(p, IPPROTO_UDP, "allow", "eacces");

  /* Read-only interface and route queries (getifaddrs: Node's os.networkInterfaces(), glibc's
   * AI_ADDRCONFIG); sock_diag (other processes' sockets), audit, uevent, netfilter and generic
   * netlink stay refused. */
  label(p, "netlink");
  LD(p, OFF_ARG(2));
  JEQ(p, NETLINK_ROUTE, "allow", "eacces");
}

/* Dispatch on the syscall number for the guarded calls (the accumulator holds nr). */
static void guard_dispatch(struct program *p) {
  JEQ(p, SYS_kill, "notify", NULL);
  JEQ(p, SYS_tkill, "notify", NULL);
  JEQ(p, SYS_tgkill, "notify", NULL);
  JEQ(p, SYS_rt_sigqueueinfo, "notify", NULL);
  JEQ(p, SYS_rt_tgsigqueueinfo, "notify", NULL);
  JEQ(p, SYS_pidfd_open, "notify", NULL);
  JEQ(p, SYS_fcntl, "fcntl", NULL);
  JEQ(p, SYS_ioctl, "ioctl", NULL);
  JEQ(p, SYS_prlimit64, "arg0-self", NULL);
  JEQ(p, SYS_sched_setaffinity, "arg0-self", NULL);
  JEQ(p, SYS_sched_setscheduler, "arg0-self", NULL);
  JEQ(p, SYS_sched_setparam, "arg0-self", NULL);
  JEQ(p, SYS_sched_setattr, "arg0-self", NULL);
  JEQ(p, SYS_setpriority, "setpriority", NULL);
  JEQ(p, SYS_ioprio_set, "ioprio", "allow");
}

static void guard_rules(struct program *p) {
  label(p, "fcntl");
  LD(p, OFF_ARG(1));
  JEQ(p, F_SETOWN, "notify", NULL);
  JEQ(p, F_SETOWN_EX, "eperm", "allow");

  label(p, "ioctl");
  LD(p, OFF_ARG(1));
  JEQ(p, FIOSETOWN, "eperm", NULL);
  JEQ(p, SIOCSPGRP, "eperm", "allow");

  /* Another process is named by a non-zero first argument. */
  label(p, "arg0-self");
  LD(p, OFF_ARG(0));
  JEQ(p, 0, "allow", "notify");

  /* setpriority(which, who, prio): PRIO_PROCESS/PRIO_PGRP with who 0 is the caller itself or
   * its group (the guard checks the group); PRIO_USER would reach every process of uid 0. */
  label(p, "setpriority");
  LD(p, OFF_ARG(0));
  JEQ(p, PRIO_PROCESS, "arg1-self", NULL);
  JEQ(p, PRIO_PGRP, "notify", "eperm");

  label(p, "ioprio");
  LD(p, OFF_ARG(0));
  JEQ(p, IOPRIO_WHO_PROCESS, "arg1-self", NULL);
  JEQ(p, IOPRIO_WHO_PGRP, "notify", "eperm");

  label(p, "arg1-self");
  LD(p, OFF_ARG(1));
  JEQ(p, 0, "allow", "notify");
}

static long seccomp(unsigned op, unsigned flags, void *args) {
  return syscall(SYS_seccomp, op, flags, args);
}

int apply_seccomp(bool udp, bool netlink_route, bool guard) {
  static struct program p;
  memset(&p, 0, sizeof p);
  LD(&p, OFF_ARCH);
  JEQ(&p, AUDIT_ARCH_HERE, NULL, "eacces");
  LD(&p, OFF_NR);
  if (FOREIGN_SYSCALL_BIT) JGE(&p, FOREIGN_SYSCALL_BIT, "eacces", NULL);
  JEQ(&p, SYS_socket, "socket", NULL);
  if (guard) {
    JEQ(&p, SYS_io_uring_setup, "eacces", NULL);
    guard_dispatch(&p);
  } else {
    JEQ(&p, SYS_io_uring_setup, "eacces", "allow");
  }
  socket_rules(&p, udp, netlink_route);
  if (guard) guard_rules(&p);

  label(&p, "allow");
  RET(&p, RET_ALLOW);
  label(&p, "eacces");
  RET(&p, RET_EACCES);
  label(&p, "eperm");
  RET(&p, RET_EPERM);
  if (guard) {
    label(&p, "notify");
    RET(&p, RET_NOTIFY);
  }
  build(&p);

  struct sock_fprog prog = {.len = (unsigned short)p.count, .filter = p.insns};
  if (!guard) {
    if (seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
      refuse("seccomp-socket", "seccomp(SECCOMP_SET_MODE_FILTER): %s", strerror(errno));
    return -1;
  }
  long fd = seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  if (fd < 0)
    refuse("guard", "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER): %s", strerror(errno));
  return (int)fd;
}
