package main

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A classic BPF program for seccomp that polices socket(2) by family, type and protocol:
//
//	AF_UNIX                                   allowed
//	AF_INET/AF_INET6 SOCK_STREAM, proto 0/TCP allowed (Landlock then limits connect/bind ports)
//	AF_INET/AF_INET6 SOCK_DGRAM,  proto 0/UDP allowed only with --udp
//	AF_NETLINK, NETLINK_ROUTE only            allowed only with --netlink-route (getifaddrs)
//	anything else (SOCK_RAW, AF_PACKET, MPTCP, SCTP, ICMP, other families)  EACCES
//
// io_uring_setup is refused too: io_uring can create sockets without the socket() syscall.
// A syscall from a foreign architecture (32-bit compat, x32) is refused as a whole.

const (
	bpfLd  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJge = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	bpfAnd = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	bpfRet = unix.BPF_RET | unix.BPF_K

	// struct seccomp_data: nr (0), arch (4), instruction_pointer (8), args[6] (16...). The low
	// 32 bits of each (int) argument on a little-endian machine.
	offNr   = 0
	offArch = 4
	offArg0 = 16
	offArg1 = 24
	offArg2 = 32

	retAllow = unix.SECCOMP_RET_ALLOW
	retDeny  = unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)

	sockTypeMask = 0xf // SOCK_NONBLOCK and SOCK_CLOEXEC live above it
)

// program is a tiny assembler: jumps name labels, resolved when built.
type program struct {
	insns  []unix.SockFilter
	fixups map[int][2]string // instruction index -> (true label, false label)
	labels map[string]int
}

func newProgram() *program {
	return &program{fixups: map[int][2]string{}, labels: map[string]int{}}
}

func (p *program) stmt(code uint16, k uint32) {
	p.insns = append(p.insns, unix.SockFilter{Code: code, K: k})
}
func (p *program) label(name string) { p.labels[name] = len(p.insns) }
func (p *program) jump(code uint16, k uint32, ifTrue, ifFalse string) {
	p.fixups[len(p.insns)] = [2]string{ifTrue, ifFalse}
	p.insns = append(p.insns, unix.SockFilter{Code: code, K: k})
}

func (p *program) build() []unix.SockFilter {
	for at, targets := range p.fixups {
		for i, name := range targets {
			if name == "" {
				continue // fall through
			}
			off := p.labels[name] - at - 1
			if off < 0 || off > 255 {
				panic("bpf jump out of range: " + name)
			}
			if i == 0 {
				p.insns[at].Jt = uint8(off)
			} else {
				p.insns[at].Jf = uint8(off)
			}
		}
	}
	return p.insns
}

func socketFilter(udp, netlinkRoute bool) []unix.SockFilter {
	p := newProgram()
	p.stmt(bpfLd, offArch)
	p.jump(bpfJeq, auditArch, "", "deny")
	p.stmt(bpfLd, offNr)
	if foreignSyscallBit != 0 {
		p.jump(bpfJge, foreignSyscallBit, "deny", "")
	}
	p.jump(bpfJeq, unix.SYS_SOCKET, "socket", "")
	p.jump(bpfJeq, unix.SYS_IO_URING_SETUP, "deny", "allow")

	p.label("socket")
	p.stmt(bpfLd, offArg0)
	p.jump(bpfJeq, unix.AF_UNIX, "allow", "")
	p.jump(bpfJeq, unix.AF_INET, "inet", "")
	p.jump(bpfJeq, unix.AF_INET6, "inet", "")
	p.jump(bpfJeq, unix.AF_NETLINK, allowedTo(netlinkRoute, "netlink"), "deny")

	p.label("inet")
	p.stmt(bpfLd, offArg1)
	p.stmt(bpfAnd, sockTypeMask)
	p.jump(bpfJeq, unix.SOCK_STREAM, "stream", "")
	p.jump(bpfJeq, unix.SOCK_DGRAM, allowedTo(udp, "dgram"), "deny")

	p.label("stream")
	p.stmt(bpfLd, offArg2)
	p.jump(bpfJeq, 0, "allow", "")
	p.jump(bpfJeq, unix.IPPROTO_TCP, "allow", "deny")

	p.label("dgram")
	p.stmt(bpfLd, offArg2)
	p.jump(bpfJeq, 0, "allow", "")
	p.jump(bpfJeq, unix.IPPROTO_UDP, "allow", "deny")

	// Read-only interface and route queries (getifaddrs: Node's os.networkInterfaces(), glibc's
	// AI_ADDRCONFIG); sock_diag (other processes' sockets), audit, uevent, netfilter and generic
	// netlink stay refused.
	p.label("netlink")
	p.stmt(bpfLd, offArg2)
	p.jump(bpfJeq, unix.NETLINK_ROUTE, "allow", "deny")

	p.label("allow")
	p.stmt(bpfRet, retAllow)
	p.label("deny")
	p.stmt(bpfRet, retDeny)
	return p.build()
}

// applySocketFilter installs the filter on this thread (which then execs the command).
func applySocketFilter(udp, netlinkRoute bool) error {
	filter := socketFilter(udp, netlinkRoute)
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return refuse("seccomp-socket", "prctl(PR_SET_NO_NEW_PRIVS): %v", err)
	}
	_, _, errno := syscall.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return refuse("seccomp-socket", "seccomp(SECCOMP_SET_MODE_FILTER): %v", errno)
	}
	return nil
}

// allowedTo is the label a permitted socket kind goes on to be checked at, or "deny" when the
// bundle does not allow that kind at all.
func allowedTo(allowed bool, label string) string {
	if allowed {
		return label
	}
	return "deny"
}
