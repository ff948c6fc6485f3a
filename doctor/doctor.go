package doctor

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Unlimited is what a [Source] reports for a limit the kernel does not
// enforce (RLIM_INFINITY), and what [Limit.ConnectionsAllowed] holds when a
// limit allows any number of connections.
const Unlimited = math.MaxUint64

// Defaults used when the matching [Options] field is zero.
const (
	// DefaultUserBytesPerConn is herald's own memory per idle connection,
	// in bytes, assumed until the server's figure is measured.
	DefaultUserBytesPerConn = 1024
	// DefaultKernelBytesPerConn is the kernel's memory per idle TCP socket
	// on Linux 6.x, in bytes. Measured here: 3.9 KB of slab objects per
	// socket (4.3 KB of fresh slab pages) with TestMeasureKernelMemory, and
	// 5.0 KB per socket at 152,000 sockets; the larger figure, rounded up,
	// so that the estimate errs low (see tuning.md).
	DefaultKernelBytesPerConn = 5120
	// DefaultReservedFiles is the number of descriptors a herald process
	// needs besides its connections: listeners, pollers, wakeup fds, logs.
	DefaultReservedFiles = 64
	// DefaultTarget is the number of connections the suggested fixes aim at
	// when no connection cap is configured.
	DefaultTarget = 1_000_000
	// pageSize is the unit of tcp_mem and of socket memory accounting.
	pageSize = 4096
	// maxBacklog is the largest listen backlog worth asking for: BSDs and
	// older Linux kernels keep it in 16 bits.
	maxBacklog = 65535
)

// Source reads the live limits of a machine. [Live] returns the one for the
// machine this process runs on; tests feed fakes. Implementations must be
// safe for concurrent use.
type Source interface {
	// OS names the operating system the values come from, as GOOS does:
	// "linux", "darwin", "freebsd", or anything else for a minimal report.
	OS() string
	// Sysctl returns the value of a kernel parameter by its dotted name
	// ("fs.nr_open", "kern.maxfiles"), with surrounding blanks removed and
	// inner runs of blanks (tabs in /proc/sys files) turned into one space.
	// A parameter that does not exist on this kernel returns an error.
	Sysctl(name string) (string, error)
	// Rlimit returns this process's RLIMIT_NOFILE; Unlimited stands for
	// RLIM_INFINITY.
	Rlimit() (soft, hard uint64, err error)
	// MemAvailable returns the bytes of memory that new work can still take
	// without swapping, already capped by this process's memory cgroup
	// where it has one.
	MemAvailable() (uint64, error)
}

// Options says what to assume about herald. The zero value is valid.
type Options struct {
	// UserBytesPerConn is herald's own memory (user space) per idle
	// connection; 0 means DefaultUserBytesPerConn.
	UserBytesPerConn uint64
	// KernelBytesPerConn is the kernel's memory per idle TCP connection on
	// the server side; 0 means DefaultKernelBytesPerConn.
	KernelBytesPerConn uint64
	// MaxConns is the connection cap herald is configured with; 0 means
	// none. When set, it is the target of the suggested fixes, and the
	// report warns if the machine allows fewer.
	MaxConns uint64
	// ReservedFiles is the number of descriptors needed besides
	// connections; 0 means DefaultReservedFiles.
	ReservedFiles uint64
	// FilesPerConn is the number of descriptors one connection holds; 0
	// means 1, a plain ws:// connection. A TLS 1.3 wss:// connection on
	// herald's loop engine holds one too (TLSFilesPerConn: its TCP
	// socket, the record layer runs on the event loop); a TLS 1.2 client,
	// or any client with the bridge engine, holds TLSBridgeFilesPerConn
	// (its TCP socket and the two ends of the socket pair that bridges it
	// to the event loops): pass that for a bridge-engine listener, and
	// the open-file limits then allow a third as many connections.
	FilesPerConn uint64
	// TLS says the connections are wss:// ones through herald's TLS
	// listener; the report then says what a TLS 1.2 client costs.
	TLS bool
}

// TLSFilesPerConn is the descriptors a TLS 1.3 wss:// connection holds on
// the loop engine: its TCP socket (see [Options.FilesPerConn]).
const TLSFilesPerConn = 1

// TLSBridgeFilesPerConn is the descriptors a bridged wss:// connection
// holds (a TLS 1.2 client, or the bridge engine): its TCP socket and both
// ends of its socket pair (see [Options.FilesPerConn]).
const TLSBridgeFilesPerConn = 3

func (o Options) withDefaults() Options {
	if o.UserBytesPerConn == 0 {
		o.UserBytesPerConn = DefaultUserBytesPerConn
	}
	if o.KernelBytesPerConn == 0 {
		o.KernelBytesPerConn = DefaultKernelBytesPerConn
	}
	if o.ReservedFiles == 0 {
		o.ReservedFiles = DefaultReservedFiles
	}
	if o.FilesPerConn == 0 {
		o.FilesPerConn = 1
	}
	return o
}

// Scope says what a [Limit] caps.
type Scope string

// The scopes, in the order a [Report] lists them.
const (
	// ScopeHeld limits cap how many connections the process can hold.
	ScopeHeld Scope = "held"
	// ScopeBusy limits cap how many connections can have data queued in
	// the kernel at the same time (during a broadcast to all, say).
	ScopeBusy Scope = "busy"
	// ScopeBurst limits cap how many connects can wait to be accepted at
	// once (a reconnect storm after a restart).
	ScopeBurst Scope = "burst"
	// ScopePeer limits cap the connecting side: a load generator or a
	// proxy in front of herald, per source address and herald address.
	ScopePeer Scope = "peer"
)

func (s Scope) rank() int {
	switch s {
	case ScopeHeld:
		return 0
	case ScopeBusy:
		return 1
	case ScopeBurst:
		return 2
	default:
		return 3
	}
}

// Fix is one way to raise a limit: where the lines go, and the lines
// themselves, each an exact command or configuration line.
type Fix struct {
	// Where says where the lines go or when they apply, e.g. "now, as
	// root" or "/etc/sysctl.d/99-herald.conf (kept across reboots)".
	Where string `json:"where"`
	// Lines are typed or written as they are.
	Lines []string `json:"lines"`
}

// Limit is one kernel or process limit and the connections it allows.
type Limit struct {
	// Name says in plain words what the limit is.
	Name string `json:"name"`
	// Knob is the exact name of the setting: "RLIMIT_NOFILE", a sysctl.
	Knob string `json:"knob"`
	// Scope says what the limit caps.
	Scope Scope `json:"scope"`
	// Value is the setting as read, e.g. "soft 20000, hard 20000".
	Value string `json:"value"`
	// ConnectionsAllowed is how many connections the limit allows, in the
	// sense of its Scope; Unlimited when it allows any number.
	ConnectionsAllowed uint64 `json:"connections_allowed"`
	// Needed is what the report's Target needs of this limit: the Target
	// itself, or for ScopeBurst the largest useful backlog.
	Needed uint64 `json:"needed"`
	// Short is true when ConnectionsAllowed is below Needed.
	Short bool `json:"short"`
	// Note explains the arithmetic and anything worth knowing.
	Note string `json:"note,omitempty"`
	// Fix lists ways to raise the limit to what Needed asks; empty when the
	// limit is not Short.
	Fix []Fix `json:"fix,omitempty"`
}

// Memory is the arithmetic of one connection's memory.
type Memory struct {
	// AvailableBytes is the memory new connections can take.
	AvailableBytes uint64 `json:"available_bytes"`
	// KernelBytesPerConn and UserBytesPerConn are the idle costs assumed,
	// PerConnBytes their sum.
	KernelBytesPerConn uint64 `json:"kernel_bytes_per_conn"`
	UserBytesPerConn   uint64 `json:"user_bytes_per_conn"`
	PerConnBytes       uint64 `json:"per_conn_bytes"`
	// TCPBufMinBytes is the socket buffer space one busy connection is
	// squeezed to under memory pressure (tcp_rmem[0] + tcp_wmem[0]);
	// TCPBufDefaultBytes what it may fill before autotuning grows it
	// (tcp_rmem[1] + tcp_wmem[1]). Zero where the kernel does not say.
	TCPBufMinBytes     uint64 `json:"tcp_buf_min_bytes,omitempty"`
	TCPBufDefaultBytes uint64 `json:"tcp_buf_default_bytes,omitempty"`
}

// Report is what [Check] found. It is a plain value, safe to share once
// built.
type Report struct {
	// OS and Kernel say which machine was read.
	OS     string `json:"os"`
	Kernel string `json:"kernel,omitempty"`
	// Capacity is how many connections this process can hold: the
	// smallest ConnectionsAllowed among the limits of ScopeHeld.
	Capacity uint64 `json:"capacity"`
	// FilesPerConn is the descriptors each connection was counted for
	// (Options.FilesPerConn: 1, or TLSBridgeFilesPerConn for wss:// on
	// the bridge engine). TLS says they were counted as wss://
	// connections (Options.TLS).
	FilesPerConn uint64 `json:"files_per_conn"`
	TLS          bool   `json:"tls,omitempty"`
	// MaxConns is the configured connection cap (0: none).
	MaxConns uint64 `json:"max_conns,omitempty"`
	// Target is the number of connections the fixes aim at: MaxConns, or
	// DefaultTarget when no cap is configured.
	Target uint64 `json:"target"`
	// Limits are sorted so that the first one caps connections first: the
	// limits of ScopeHeld by ConnectionsAllowed, then the other scopes.
	Limits []Limit `json:"limits"`
	// Memory is the per-connection memory arithmetic.
	Memory Memory `json:"memory"`
	// Warnings are problems to act on, e.g. MaxConns above Capacity.
	Warnings []string `json:"warnings,omitempty"`
	// Skipped lists the settings that could not be read, and why.
	Skipped []string `json:"skipped,omitempty"`
}

// First returns the limit that caps connections first, and false when no
// limit could be read.
func (r Report) First() (Limit, bool) {
	if len(r.Limits) == 0 || r.Limits[0].Scope != ScopeHeld {
		return Limit{}, false
	}
	return r.Limits[0], true
}

// Check reads every limit it knows for src's operating system and works out
// the connections each allows. It never fails: a setting it cannot read is
// listed in Report.Skipped.
func Check(src Source, opts Options) Report {
	o := opts.withDefaults()
	c := &checker{src: src, o: o, target: o.MaxConns}
	if c.target == 0 {
		c.target = DefaultTarget
	}
	c.r = Report{OS: src.OS(), MaxConns: o.MaxConns, Target: c.target, FilesPerConn: o.FilesPerConn, TLS: o.TLS}
	c.nofile()
	switch src.OS() {
	case "linux":
		c.r.Kernel = c.sysctlOr("kernel.osrelease")
		c.linux()
	case "darwin", "freebsd":
		c.r.Kernel = c.sysctlOr("kern.osrelease")
		c.bsd()
	}
	c.memory()
	for i := range c.r.Limits {
		l := &c.r.Limits[i]
		l.Needed = c.need(l.Scope)
		l.Short = l.ConnectionsAllowed < l.Needed
		if l.Short {
			l.Fix = mergeFixes(l.Fix)
		} else {
			l.Fix = nil
		}
	}
	slices.SortStableFunc(c.r.Limits, func(a, b Limit) int {
		if n := cmp.Compare(a.Scope.rank(), b.Scope.rank()); n != 0 {
			return n
		}
		return cmp.Compare(a.ConnectionsAllowed, b.ConnectionsAllowed)
	})
	c.r.Capacity = Unlimited
	if f, ok := c.r.First(); ok {
		c.r.Capacity = f.ConnectionsAllowed
	}
	if o.MaxConns > 0 && o.MaxConns > c.r.Capacity {
		f, _ := c.r.First()
		c.r.Warnings = append(c.r.Warnings, fmt.Sprintf(
			"max connections is set to %s, above the %s this machine allows: %s (%s) caps it first",
			group(o.MaxConns), group(c.r.Capacity), f.Name, f.Value))
	}
	return c.r
}

// checker carries one Check's inputs and the report being built.
type checker struct {
	src    Source
	o      Options
	target uint64
	r      Report
}

// need returns how many connections a limit of scope s must allow for the
// target to be reached.
func (c *checker) need(s Scope) uint64 {
	if s == ScopeBurst {
		return min(c.target, maxBacklog)
	}
	return c.target
}

// add appends a limit to the report.
func (c *checker) add(l Limit) { c.r.Limits = append(c.r.Limits, l) }

// skip records a setting that could not be read.
func (c *checker) skip(name string, err error) {
	c.r.Skipped = append(c.r.Skipped, fmt.Sprintf("%s: %v", name, err))
}

// sysctlOr returns a sysctl's value, or "" when it cannot be read.
func (c *checker) sysctlOr(name string) string {
	v, err := c.src.Sysctl(name)
	if err != nil {
		return ""
	}
	return v
}

// nofileTarget is the open-file limit the target needs, rounded up to a
// power of two as these limits usually are.
func (c *checker) nofileTarget() uint64 {
	return roundPow2(c.files(c.target) + c.o.ReservedFiles)
}

// files is the descriptors n connections hold.
func (c *checker) files(n uint64) uint64 {
	if n > math.MaxUint64/c.o.FilesPerConn {
		return math.MaxUint64
	}
	return n * c.o.FilesPerConn
}

// conns is the connections a budget of n descriptors holds, after the
// reserved ones when reserve is set.
func (c *checker) conns(n uint64, reserve bool) uint64 {
	if reserve {
		n = subSat(n, c.o.ReservedFiles)
	}
	if n == Unlimited {
		return Unlimited
	}
	return n / c.o.FilesPerConn
}

// filesNote says how many descriptors a connection counts for.
func (c *checker) filesNote() string {
	if c.o.FilesPerConn == 1 {
		if c.o.TLS {
			return fmt.Sprintf("Each connection is one open file (1 per wss connection on the loop engine, %d for a TLS 1.2 client)", TLSBridgeFilesPerConn)
		}
		return "Each connection is one open file"
	}
	return fmt.Sprintf("Each connection is %d open files (a wss:// connection: its TCP socket and the socket pair that bridges it to the event loops)", c.o.FilesPerConn)
}

// nofile reads RLIMIT_NOFILE, the same on every OS.
func (c *checker) nofile() {
	soft, hard, err := c.src.Rlimit()
	if err != nil {
		c.skip("RLIMIT_NOFILE", err)
		return
	}
	note := fmt.Sprintf("%s; %d more are kept for listeners, pollers and logs.", c.filesNote(), c.o.ReservedFiles)
	if soft < hard {
		note += " herald raises the soft limit to the hard limit at start, so only the hard limit counts."
	}
	if c.src.OS() == "linux" {
		note += " Where even root cannot raise the hard limit (a container without CAP_SYS_RESOURCE), the container runtime sets it."
	}
	want := c.nofileTarget()
	c.add(Limit{
		Name:               "open files per process",
		Knob:               "RLIMIT_NOFILE",
		Scope:              ScopeHeld,
		Value:              fmt.Sprintf("soft %s, hard %s", num(soft), num(hard)),
		ConnectionsAllowed: c.conns(hard, true),
		Note:               note,
		Fix:                nofileFixes(c.src.OS(), want),
	})
}

// memory compares available memory with the bytes one connection costs.
func (c *checker) memory() {
	per := c.o.KernelBytesPerConn + c.o.UserBytesPerConn
	c.r.Memory.KernelBytesPerConn = c.o.KernelBytesPerConn
	c.r.Memory.UserBytesPerConn = c.o.UserBytesPerConn
	c.r.Memory.PerConnBytes = per
	avail, err := c.src.MemAvailable()
	if err != nil {
		c.skip("available memory", err)
		return
	}
	c.r.Memory.AvailableBytes = avail
	needBytes := c.target * per
	c.add(Limit{
		Name:               "available memory",
		Knob:               "memory",
		Scope:              ScopeHeld,
		Value:              fmt.Sprintf("%s available, %s B per connection", bytesStr(avail), num(per)),
		ConnectionsAllowed: avail / per,
		Note: fmt.Sprintf("An idle connection costs %s B in the kernel (measured on Linux 6.x) and %s B in herald; "+
			"one with unsent or unread data costs its socket buffers on top (see the busy limits).",
			num(c.o.KernelBytesPerConn), num(c.o.UserBytesPerConn)),
		Fix: []Fix{{
			Where: "this machine",
			Lines: []string{fmt.Sprintf("%s of available memory holds %s idle connections: add memory, or lift the memory cap of herald's cgroup (systemd: MemoryMax=infinity in the unit's drop-in)",
				bytesStr(needBytes), group(c.target))},
		}},
	})
}

// subSat returns a-b, or 0 when b > a; Unlimited stays Unlimited.
func subSat(a, b uint64) uint64 {
	switch {
	case a == Unlimited:
		return Unlimited
	case b > a:
		return 0
	}
	return a - b
}

// roundPow2 returns the smallest power of two ≥ n (n ≥ 1).
func roundPow2(n uint64) uint64 {
	p := uint64(1)
	for p < n && p < 1<<62 {
		p <<= 1
	}
	return p
}
