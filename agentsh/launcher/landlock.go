package main

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Landlock through its three raw syscalls (include/uapi/linux/landlock.h).

const landlockRuleNetPort = 2 // LANDLOCK_RULE_NET_PORT

type landlockNetPortAttr struct {
	allowedAccess uint64
	port          uint64
}

// landlockABI is the kernel's Landlock ABI version, 0 when Landlock is unavailable.
func landlockABI() int {
	v, _, errno := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(v)
}

// applyLandlock restricts TCP connect to the proxy port(s) and TCP bind to the allowed ranges
// (ABI >= 4), and scopes signals and abstract unix sockets to this sandbox (ABI >= 6). With
// bestEffort, layers the kernel lacks are skipped (the service only allows that when
// ALLOW_DEGRADED is set, and reports the missing layer itself).
func applyLandlock(o *options) error {
	abi := landlockABI()
	attr := unix.LandlockRulesetAttr{}
	size := unsafe.Sizeof(attr)
	switch {
	case abi >= 6:
		attr.Access_net = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
		attr.Scoped = unix.LANDLOCK_SCOPE_SIGNAL | unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
		o.signalScope = true
	case abi >= 4:
		attr.Access_net = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
		size = unsafe.Offsetof(attr.Scoped) // the kernel rejects a non-zero field it does not know
	default:
		if o.bestEffort {
			return nil
		}
		return refuse("landlock-net", "the kernel's Landlock ABI is %d; TCP port rules need ABI 4 (Linux 6.7)", abi)
	}
	fd, _, errno := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return refuse("landlock-net", "landlock_create_ruleset: %v", errno)
	}
	defer syscall.Close(int(fd))

	add := func(access uint64, port uint16) error {
		rule := landlockNetPortAttr{allowedAccess: access, port: uint64(port)}
		_, _, errno := syscall.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, landlockRuleNetPort,
			uintptr(unsafe.Pointer(&rule)), 0, 0, 0)
		if errno != 0 {
			return refuse("landlock-net", "landlock_add_rule(port %d): %v", port, errno)
		}
		return nil
	}
	for _, p := range o.proxyPorts {
		if err := add(unix.LANDLOCK_ACCESS_NET_CONNECT_TCP, p); err != nil {
			return err
		}
	}
	for _, r := range o.bind {
		for p := uint32(r.lo); p <= uint32(r.hi); p++ {
			if err := add(unix.LANDLOCK_ACCESS_NET_BIND_TCP, uint16(p)); err != nil {
				return err
			}
		}
	}
	// landlock_restrict_self needs no_new_privs (agentsh-unixwrap sets it; setting it again is
	// harmless and keeps the launcher correct on its own).
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return refuse("landlock-net", "prctl(PR_SET_NO_NEW_PRIVS): %v", err)
	}
	if _, _, errno := syscall.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return refuse("landlock-net", "landlock_restrict_self: %v", errno)
	}
	return nil
}
