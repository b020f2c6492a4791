package main

import "golang.org/x/sys/unix"

const (
	auditArch = unix.AUDIT_ARCH_X86_64
	// x32 syscalls carry this bit; they would reach socket() under another number.
	foreignSyscallBit = 0x40000000
)
