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
 * With a guard (a kept identity: every command is uid 0, so uids protect nothing), the calls
 * that act on another process by its id are refused with EPERM when they name a protected one
 * (guard.c collects them: the launcher's ancestors up to init, which include agentsh and the
 * boot script, the service, every thread of each, and their process groups): kill, tkill,
 * tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo, pidfd_open, setpgid (joining their group) and
 * fcntl(F_SETOWN). kill(-1) is refused. prlimit64, setpriority, sched_set{affinity,scheduler,
 * param,attr} and ioprio_set may only name the caller itself (0), or for setpriority and
 * ioprio_set its own process group. What names a target through memory the filter cannot read
 * is refused: fcntl(F_SETOWN_EX), ioctl(FIOSETOWN/SIOCSPGRP).
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
#define IOPRIO_WHO_USER 3

#define RET_ALLOW SECCOMP_RET_ALLOW
#define RET_EACCES (SECCOMP_RET_ERRNO | (EACCES & SECCOMP_RET_DATA))
#define RET_EPERM (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

#define OFF_NR offsetof(struct seccomp_data, nr)
#define OFF_ARCH offsetof(struct seccomp_data, arch)
/* The low 32 bits of an argument on a little-endian machine: every argument checked here is an
 * int (pid, family, command) that the kernel truncates to 32 bits itself. */
#define OFF_ARG(n) (offsetof(struct seccomp_data, args) + 8 * (n))

#define MAX_INSNS (120 + 2 * MAX_PROTECTED)
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
  JEQ(p, SYS_kill, "kill", NULL);
  JEQ(p, SYS_tkill, "arg0-protected", NULL);
  JEQ(p, SYS_tgkill, "arg0-protected", NULL);
  JEQ(p, SYS_rt_sigqueueinfo, "arg0-protected", NULL);
  JEQ(p, SYS_rt_tgsigqueueinfo, "arg0-protected", NULL);
  JEQ(p, SYS_pidfd_open, "arg0-protected", NULL);
  JEQ(p, SYS_setpgid, "arg1-protected", NULL);
  JEQ(p, SYS_fcntl, "fcntl", NULL);
  JEQ(p, SYS_ioctl, "ioctl", NULL);
  JEQ(p, SYS_prlimit64, "arg0-self", NULL);
  JEQ(p, SYS_sched_setaffinity, "arg0-self", NULL);
  JEQ(p, SYS_sched_setscheduler, "arg0-self", NULL);
  JEQ(p, SYS_sched_setparam, "arg0-self", NULL);
  JEQ(p, SYS_sched_setattr, "arg0-self", NULL);
  JEQ(p, SYS_setpriority, "priority", NULL);
  JEQ(p, SYS_ioprio_set, "priority", "allow");
}

/* Refuses when the accumulator holds a protected pid or thread id (as a positive number) or a
 * protected process group (as its negative), else allows. */
static void protected_check(struct program *p, const struct protected_ids *protect) {
  label(p, "protected");
  for (int i = 0; i < protect->count; i++)
    JEQ(p, (uint32_t)protect->ids[i], "protected-eperm", NULL);
  for (int i = 0; i < protect->group_count; i++)
    JEQ(p, (uint32_t)-protect->groups[i], "protected-eperm", NULL);
  RET(p, RET_ALLOW);
  label(p, "protected-eperm");
  RET(p, RET_EPERM);
}

static void guard_rules(struct program *p) {
  /* kill(pid): -1 is every process the caller may signal; 0 the caller's own group (joining
   * a protected group is refused at setpgid). */
  label(p, "kill");
  LD(p, OFF_ARG(0));
  JEQ(p, 0xffffffffU, "eperm", "protected");

  label(p, "arg0-protected");
  LD(p, OFF_ARG(0));
  JEQ(p, 0, "allow", "protected");

  label(p, "arg1-protected");
  LD(p, OFF_ARG(1));
  JEQ(p, 0, "allow", "protected");

  label(p, "fcntl");
  LD(p, OFF_ARG(1));
  JEQ(p, F_SETOWN, NULL, "fcntl-other");
  LD(p, OFF_ARG(2));
  JEQ(p, 0, "allow", "protected");
  label(p, "fcntl-other");
  JEQ(p, F_SETOWN_EX, "eperm", "allow");

  label(p, "ioctl");
  LD(p, OFF_ARG(1));
  JEQ(p, FIOSETOWN, "eperm", NULL);
  JEQ(p, SIOCSPGRP, "eperm", "allow");

  /* Only the caller itself (0). */
  label(p, "arg0-self");
  LD(p, OFF_ARG(0));
  JEQ(p, 0, "allow", "eperm");

  /* setpriority(which, who, prio) and ioprio_set(which, who, ioprio): the caller (PRIO_PROCESS
   * or IOPRIO_WHO_PROCESS with who 0) or its own group (who 0); by user: every process of uid 0. */
  label(p, "priority");
  LD(p, OFF_ARG(0));
  JEQ(p, PRIO_USER, "eperm", NULL);
  JEQ(p, IOPRIO_WHO_USER, "eperm", NULL);
  LD(p, OFF_ARG(1));
  JEQ(p, 0, "allow", "eperm");
}

void apply_seccomp(bool udp, bool netlink_route, const struct protected_ids *protect) {
  static struct program p;
  memset(&p, 0, sizeof p);
  LD(&p, OFF_ARCH);
  JEQ(&p, AUDIT_ARCH_HERE, NULL, "eacces");
  LD(&p, OFF_NR);
  if (FOREIGN_SYSCALL_BIT) JGE(&p, FOREIGN_SYSCALL_BIT, "eacces", NULL);
  JEQ(&p, SYS_socket, "socket", NULL);
  if (protect) {
    JEQ(&p, SYS_io_uring_setup, "eacces", NULL);
    guard_dispatch(&p);
  } else {
    JEQ(&p, SYS_io_uring_setup, "eacces", "allow");
  }
  socket_rules(&p, udp, netlink_route);
  if (protect) guard_rules(&p);

  label(&p, "allow");
  RET(&p, RET_ALLOW);
  label(&p, "eacces");
  RET(&p, RET_EACCES);
  label(&p, "eperm");
  RET(&p, RET_EPERM);
  /* Last: the only jumps into it are short, and it jumps only within itself. */
  if (protect) protected_check(&p, protect);
  build(&p);

  struct sock_fprog prog = {.len = (unsigned short)p.count, .filter = p.insns};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
    refuse(protect ? "guard" : "seccomp-socket", "seccomp(SECCOMP_SET_MODE_FILTER): %s",
           strerror(errno));
}
