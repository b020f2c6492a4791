// Command agentsh-launch runs between agentsh's sandbox wrapper (agentsh-unixwrap: seccomp +
// Landlock for files) and the governed command, and adds what agentsh 0.16.9 cannot enforce
// without ptrace:
//
//   - Landlock (ABI >= 4) TCP rules: connect only to the port of the agentsh proxy named in the
//     command's own HTTP_PROXY/HTTPS_PROXY, bind only to the ports the bundle allows;
//   - Landlock scopes (ABI >= 6): no signals and no abstract unix sockets towards processes
//     outside this command's own sandbox;
//   - a seccomp filter on socket(): only unix, TCP (and UDP when the bundle allows it) sockets;
//     NETLINK_ROUTE only when allowed; no raw, packet or other families; no io_uring (it would
//     bypass the filter);
//   - an unprivileged identity: setgroups([]), setresgid, setresuid, no capabilities, a umask,
//     a private HOME/TMPDIR per identity (--keep-identity skips it: agentsh's seccomp supervisor
//     must read the command's memory, which needs CAP_SYS_PTRACE once the uids differ).
//
// It fails closed: when any requested layer cannot be applied, the command is not executed; one
// line "agentsh-launch: refused: <layer>: <reason>" goes to stderr and the exit code is 122.
//
// Why Go and not C: it is built by the same toolchain and module (agentsh/go.mod) as agentsh
// itself, with one dependency (golang.org/x/sys, already pinned for agentsh), as a static binary
// with no libc or libseccomp at run time. The kernel interfaces are used directly (raw Landlock
// syscalls, a hand-written BPF program) on one locked OS thread that then execs, so the code is
// short enough to audit. Start-up cost is measured in the README (well under the 5 ms target).
//
// Usage: agentsh-launch [options] -- PROGRAM [ARGS...]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// ExitRefused is the launcher's own exit code: nothing was executed.
const ExitRefused = 122

func init() {
	// Landlock and seccomp are applied to the calling thread only; exec from the same thread.
	runtime.LockOSThread()
}

type portRange struct{ lo, hi uint16 }

type options struct {
	uid, gid     int
	bind         []portRange
	udp          bool
	netlinkRoute bool
	keepIdentity bool
	umask        int
	scratch      string
	bestEffort   bool
	tag          string
	probe        bool
	argv         []string
	proxyPorts   []uint16
	signalScope  bool
}

// refusal carries the layer that could not be applied.
type refusal struct {
	layer  string
	reason string
}

func (r *refusal) Error() string { return r.layer + ": " + r.reason }

func refuse(layer, format string, args ...any) error {
	return &refusal{layer: layer, reason: fmt.Sprintf(format, args...)}
}

func main() {
	opts, err := parseArgs(os.Args[1:])
	if err != nil {
		fail(opts.tag, err)
	}
	if opts.probe {
		printProbe()
		return
	}
	if err := run(opts); err != nil {
		fail(opts.tag, err)
	}
}

func fail(tag string, err error) {
	var r *refusal
	if !errors.As(err, &r) {
		r = &refusal{layer: "usage", reason: err.Error()}
	}
	line := "agentsh-launch: refused: " + r.layer + ": " + oneLine(r.reason)
	if tag != "" {
		line += " (run " + tag + ")"
	}
	fmt.Fprintln(os.Stderr, line)
	os.Exit(ExitRefused)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func parseArgs(args []string) (*options, error) {
	fs := flag.NewFlagSet("agentsh-launch", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder)) // errors are reported as one refusal line
	o := &options{}
	var binds multiFlag
	umask := fs.String("umask", "077", "umask of the command (octal)")
	fs.IntVar(&o.uid, "uid", -1, "unprivileged uid to run as (> 0; required unless --keep-identity)")
	fs.BoolVar(&o.keepIdentity, "keep-identity", false, "do not change uid/gid (hosts where agentsh lacks CAP_SYS_PTRACE)")
	fs.IntVar(&o.gid, "gid", -1, "primary gid to run as (required, > 0)")
	fs.Var(&binds, "bind-ports", "TCP ports the command may bind, LO-HI or PORT (repeatable)")
	fs.BoolVar(&o.udp, "udp", false, "allow UDP sockets (AF_INET/AF_INET6 SOCK_DGRAM)")
	fs.BoolVar(&o.netlinkRoute, "netlink-route", false, "allow AF_NETLINK sockets of protocol NETLINK_ROUTE (interface lists)")
	fs.StringVar(&o.scratch, "scratch", "", "private HOME and TMPDIR for this identity, created if missing")
	fs.BoolVar(&o.bestEffort, "best-effort", false, "skip Landlock layers the kernel lacks instead of refusing")
	fs.StringVar(&o.tag, "tag", "", "appended to a refusal line, so the caller can tell it from command output")
	fs.BoolVar(&o.probe, "probe", false, "print the kernel's Landlock support as JSON and exit")
	if err := fs.Parse(args); err != nil {
		return o, refuse("usage", "%v", err)
	}
	if o.probe {
		return o, nil
	}
	o.argv = fs.Args()
	if len(o.argv) == 0 {
		return o, refuse("usage", "no command after --")
	}
	if o.keepIdentity {
		if o.uid != -1 || o.gid != -1 {
			return o, refuse("usage", "--keep-identity excludes --uid and --gid")
		}
	} else if o.uid <= 0 || o.gid <= 0 {
		return o, refuse("identity", "--uid and --gid must be given and not 0")
	}
	m, err := strconv.ParseUint(*umask, 8, 32)
	if err != nil || m > 0o777 {
		return o, refuse("usage", "bad --umask %q", *umask)
	}
	o.umask = int(m)
	for _, b := range binds {
		r, err := parsePortRange(b)
		if err != nil {
			return o, refuse("usage", "bad --bind-ports %q: %v", b, err)
		}
		o.bind = append(o.bind, r)
	}
	return o, nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func parsePortRange(s string) (portRange, error) {
	lo, hi, found := strings.Cut(s, "-")
	if !found {
		hi = lo
	}
	l, err1 := strconv.ParseUint(lo, 10, 16)
	h, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || l == 0 || h < l {
		return portRange{}, errors.New("want PORT or LO-HI with 1 <= LO <= HI <= 65535")
	}
	return portRange{uint16(l), uint16(h)}, nil
}

func run(o *options) error {
	ports, err := proxyPorts(os.Environ())
	if err != nil {
		return err
	}
	o.proxyPorts = ports

	env := os.Environ()
	if o.scratch != "" {
		// Kept identity: the scratch dir is still the slot's own HOME/TMPDIR, owned by whoever
		// runs the command.
		uid, gid := o.uid, o.gid
		if o.keepIdentity {
			uid, gid = os.Getuid(), os.Getgid()
		}
		if err := prepareScratch(o.scratch, uid, gid); err != nil {
			return err
		}
		env = setEnv(env, "HOME", o.scratch)
		env = setEnv(env, "TMPDIR", o.scratch)
	}
	syscall.Umask(o.umask)
	if !o.keepIdentity {
		if err := dropIdentity(o.uid, o.gid); err != nil {
			return err
		}
	}
	if err := applyLandlock(o); err != nil {
		return err
	}
	if err := applySocketFilter(o.udp, o.netlinkRoute); err != nil {
		return err
	}
	path, err := lookPath(o.argv[0], env)
	if err != nil {
		return refuse("exec", "%v", err)
	}
	err = syscall.Exec(path, o.argv, env)
	return refuse("exec", "%s: %v", path, err)
}

// proxyPorts reads the agentsh proxy's port from the command's own environment. Every proxy
// variable that is set must name a loopback proxy; a command without one is refused, since it
// would otherwise have no egress at all and the caller could not tell why.
func proxyPorts(environ []string) ([]uint16, error) {
	seen := map[uint16]bool{}
	var ports []uint16
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		switch name {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy":
		default:
			continue
		}
		if value == "" {
			continue
		}
		port, err := loopbackPort(value)
		if err != nil {
			return nil, refuse("landlock-net", "%s=%q: %v", name, value, err)
		}
		if !seen[port] {
			seen[port] = true
			ports = append(ports, port)
		}
	}
	if len(ports) == 0 {
		return nil, refuse("landlock-net", "no HTTP_PROXY/HTTPS_PROXY in the environment: the agentsh proxy port is unknown")
	}
	return ports, nil
}

func loopbackPort(proxyURL string) (uint16, error) {
	rest, ok := strings.CutPrefix(proxyURL, "http://")
	if !ok {
		return 0, errors.New("not an http:// proxy URL")
	}
	hostport, _, _ := strings.Cut(rest, "/")
	var host, port string
	switch {
	case strings.HasPrefix(hostport, "[::1]:"):
		host, port = "::1", strings.TrimPrefix(hostport, "[::1]:")
	default:
		var found bool
		host, port, found = strings.Cut(hostport, ":")
		if !found {
			return 0, errors.New("no port")
		}
	}
	if host != "127.0.0.1" && host != "localhost" && host != "::1" {
		return 0, errors.New("the proxy is not on loopback")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return 0, errors.New("bad port")
	}
	return uint16(p), nil
}

func setEnv(env []string, name, value string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return append(out, name+"="+value)
}

// lookPath resolves PROGRAM against the command's PATH (exec needs a path).
func lookPath(prog string, env []string) (string, error) {
	if strings.Contains(prog, "/") {
		return prog, nil
	}
	pathVar := "/usr/bin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range strings.Split(pathVar, ":") {
		if dir == "" {
			continue
		}
		candidate := dir + "/" + prog
		if st, err := os.Stat(candidate); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH", prog)
}

func printProbe() {
	abi := landlockABI()
	out := map[string]any{
		"landlockAbi":  abi,
		"landlockNet":  abi >= 4,
		"signalScope":  abi >= 6,
		"exitRefused":  ExitRefused,
		"architecture": runtime.GOARCH,
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
