package main

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// dropIdentity switches to uid/gid with no supplementary groups. Changing all three uids away
// from 0 clears the permitted and effective capability sets (no SECBIT_KEEP_CAPS); ambient
// capabilities are cleared explicitly, and the result is verified rather than assumed.
func dropIdentity(uid, gid int) error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return refuse("identity", "clearing ambient capabilities: %v", err)
	}
	// Raw syscalls change this thread's credentials only (the kernel keeps them per thread; the
	// syscall package would stop every runtime thread to change them all). This locked thread
	// execs the command, and exec ends every other thread, so only its credentials carry over.
	if _, _, errno := syscall.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); errno != 0 {
		return refuse("identity", "setgroups([]): %v", errno)
	}
	if _, _, errno := syscall.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); errno != 0 {
		return refuse("identity", "setresgid(%d): %v", gid, errno)
	}
	if _, _, errno := syscall.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); errno != 0 {
		return refuse("identity", "setresuid(%d): %v", uid, errno)
	}
	r, e, s := unix.Getresuid()
	if r != uid || e != uid || s != uid {
		return refuse("identity", "uids are %d/%d/%d after setresuid(%d)", r, e, s, uid)
	}
	r, e, s = unix.Getresgid()
	if r != gid || e != gid || s != gid {
		return refuse("identity", "gids are %d/%d/%d after setresgid(%d)", r, e, s, gid)
	}
	if groups, err := unix.Getgroups(); err != nil || len(groups) != 0 {
		return refuse("identity", "supplementary groups remain: %v %v", groups, err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return refuse("identity", "capget: %v", err)
	}
	for _, d := range data {
		if d.Effective != 0 || d.Permitted != 0 || d.Inheritable != 0 {
			return refuse("identity", "capabilities remain after the uid change")
		}
	}
	return nil
}

// prepareScratch makes dir (HOME and TMPDIR of one identity) exist, owned by uid:gid, mode
// 0700, inside a root-owned parent no one else may write to, so no other identity can plant
// or read anything in it. Runs as root, before the identity is dropped.
func prepareScratch(dir string, uid, gid int) error {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return refuse("scratch", "%q is not a clean absolute path", dir)
	}
	// Fast path, one syscall (each file syscall is a round trip to agentsh's seccomp supervisor):
	// the directory exists as this identity's own, mode 0700. Only root can have made it so, in
	// the root-owned parent that boot creates.
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR &&
		int(st.Uid) == uid && int(st.Gid) == gid && st.Mode&0o7777 == 0o700 {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := os.Mkdir(parent, 0o711); err == nil {
		// Mkdir applied the umask; the identities need to traverse it.
		if err := unix.Chmod(parent, 0o711); err != nil {
			return refuse("scratch", "chmod %s: %v", parent, err)
		}
	} else if !errors.Is(err, os.ErrExist) {
		return refuse("scratch", "mkdir %s: %v", parent, err)
	}
	if err := unix.Lstat(parent, &st); err != nil {
		return refuse("scratch", "lstat %s: %v", parent, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != 0 || st.Mode&0o022 != 0 {
		return refuse("scratch", "%s must be a directory owned by root and writable only by root", parent)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return refuse("scratch", "mkdir %s: %v", dir, err)
	}
	if err := unix.Lstat(dir, &st); err != nil {
		return refuse("scratch", "lstat %s: %v", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return refuse("scratch", "%s is not a directory", dir)
	}
	if int(st.Uid) != uid || int(st.Gid) != gid {
		if err := unix.Lchown(dir, uid, gid); err != nil {
			return refuse("scratch", "chown %s: %v", dir, err)
		}
	}
	if st.Mode&0o7777 != 0o700 {
		if err := unix.Chmod(dir, 0o700); err != nil {
			return refuse("scratch", "chmod %s: %v", dir, err)
		}
	}
	return nil
}
