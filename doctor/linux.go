package doctor

import (
	"fmt"
	"strconv"
	"strings"
)

// linux reads the Linux limits. It runs on any OS so that tests can feed it
// the inputs of a Linux box.
func (c *checker) linux() {
	c.nrOpen()
	c.fileMax()
	c.conntrack()
	c.tcpMem()
	c.linuxBacklog()
	c.linuxPorts()
}

// nrOpen reads fs.nr_open, the ceiling of any process's hard RLIMIT_NOFILE.
func (c *checker) nrOpen() {
	n, err := c.uint("fs.nr_open")
	if err != nil {
		c.skip("fs.nr_open", err)
		return
	}
	want := c.nofileTarget()
	note := "The hard open-file limit of any process cannot be set above this."
	if n < want {
		note += fmt.Sprintf(" Raise it before raising RLIMIT_NOFILE to %s.", num(want))
	}
	c.add(Limit{
		Name:               "open files per process, kernel ceiling",
		Knob:               "fs.nr_open",
		Scope:              ScopeHeld,
		Value:              num(n),
		ConnectionsAllowed: c.conns(n, true),
		Note:               note,
		Fix:                sysctlFixes("linux", "fs.nr_open", dec(max(n, want)), false),
	})
}

// fileMax reads fs.file-max and fs.file-nr: open files on the whole system.
func (c *checker) fileMax() {
	n, err := c.uint("fs.file-max")
	if err != nil {
		c.skip("fs.file-max", err)
		return
	}
	var used uint64
	if f, err := c.fields("fs.file-nr", 3); err == nil {
		used = f[0]
	}
	want := roundPow2(c.files(c.target) + used + c.o.ReservedFiles)
	c.add(Limit{
		Name:               "open files on the whole system",
		Knob:               "fs.file-max",
		Scope:              ScopeHeld,
		Value:              fmt.Sprintf("%s (%s in use)", num(n), num(used)),
		ConnectionsAllowed: c.conns(subSat(n, used), false),
		Note:               "Shared by every process on the machine.",
		Fix:                sysctlFixes("linux", "fs.file-max", dec(max(n, want)), false),
	})
}

// conntrack reads the netfilter connection-tracking table, where netfilter
// is loaded.
func (c *checker) conntrack() {
	const knob = "net.netfilter.nf_conntrack_max"
	n, err := c.uint(knob)
	if err != nil {
		c.r.Skipped = append(c.r.Skipped, knob+": not present (connection tracking not loaded), so no limit")
		return
	}
	count, _ := c.uint("net.netfilter.nf_conntrack_count")
	note := fmt.Sprintf("Each tracked connection takes one entry (a 256-byte slab object on Linux 6.x, from /proc/slabinfo); "+
		"when the table is full the kernel drops new connections (\"nf_conntrack: table full, dropping packet\"). "+
		"%s entries in use now.", num(count))
	if count == 0 {
		note += " None in use may mean nothing asks for tracking yet (no stateful or NAT rule); a firewall or container runtime turns it on."
	}
	want := roundPow2(c.target + count)
	fixes := sysctlFixes("linux", knob, dec(max(n, want)), false)
	fixes = append(fixes,
		Fix{
			Where: "hash buckets, so lookups stay short (now, as root)",
			Lines: []string{fmt.Sprintf("echo %d > /sys/module/nf_conntrack/parameters/hashsize", max(n, want)/4)},
		},
		Fix{
			Where: "or leave herald's port untracked (8080 here; use yours)",
			Lines: []string{
				"iptables -t raw -I PREROUTING -p tcp --dport 8080 -j CT --notrack",
				"iptables -t raw -I OUTPUT -p tcp --sport 8080 -j CT --notrack",
			},
		})
	c.add(Limit{
		Name:               "tracked connections (netfilter conntrack)",
		Knob:               knob,
		Scope:              ScopeHeld,
		Value:              fmt.Sprintf("%s (%s in use)", num(n), num(count)),
		ConnectionsAllowed: subSat(n, count),
		Note:               note,
		Fix:                fixes,
	})
}

// tcpMem reads tcp_mem and the per-socket buffer sizes.
func (c *checker) tcpMem() {
	if r, err := c.fields("net.ipv4.tcp_rmem", 3); err == nil {
		if w, err := c.fields("net.ipv4.tcp_wmem", 3); err == nil {
			c.r.Memory.TCPBufMinBytes = r[0] + w[0]
			c.r.Memory.TCPBufDefaultBytes = r[1] + w[1]
		}
	}
	m, err := c.fields("net.ipv4.tcp_mem", 3)
	if err != nil {
		c.skip("net.ipv4.tcp_mem", err)
		return
	}
	note := fmt.Sprintf("TCP buffers of all sockets together, in %d-byte pages: above the second figure the kernel "+
		"squeezes every buffer, above the third new data waits or is dropped (\"TCP: out of memory\"). "+
		"Idle connections queue nothing and take none of it; one with any data queued takes at least one page, "+
		"so this is how many connections can have data in flight at once.", pageSize)
	if c.r.Memory.TCPBufDefaultBytes > 0 {
		note += fmt.Sprintf(" A connection whose buffers fill to the tcp_rmem/tcp_wmem defaults takes %s; squeezed, %s.",
			bytesStr(c.r.Memory.TCPBufDefaultBytes), bytesStr(c.r.Memory.TCPBufMinBytes))
	}
	// Keep the kernel's own proportions (min:pressure:max = 3:4:6).
	hi := max(m[2], c.target)
	want := fmt.Sprintf("%d %d %d", max(m[0], hi/2), max(m[1], hi*2/3), hi)
	c.add(Limit{
		Name:  "TCP buffer memory on the whole system",
		Knob:  "net.ipv4.tcp_mem",
		Scope: ScopeBusy,
		Value: fmt.Sprintf("pages %d %d %d (squeezed above %s, full at %s)",
			m[0], m[1], m[2], bytesStr(m[1]*pageSize), bytesStr(m[2]*pageSize)),
		ConnectionsAllowed: m[2],
		Note:               note,
		Fix:                sysctlFixes("linux", "net.ipv4.tcp_mem", want, false),
	})
}

// linuxBacklog reads the accept-queue caps.
func (c *checker) linuxBacklog() {
	n, err := c.uint("net.core.somaxconn")
	if err != nil {
		c.skip("net.core.somaxconn", err)
		return
	}
	value := num(n)
	syn, err := c.uint("net.ipv4.tcp_max_syn_backlog")
	if err == nil {
		value += fmt.Sprintf(", tcp_max_syn_backlog %s", num(syn))
	}
	want := dec(max(n, min(c.target, maxBacklog)))
	fixes := sysctlFixes("linux", "net.core.somaxconn", want, false)
	if err == nil && syn < min(c.target, maxBacklog) {
		fixes = append(fixes, sysctlFixes("linux", "net.ipv4.tcp_max_syn_backlog", want, false)...)
	}
	c.add(Limit{
		Name:               "listen backlog (connects waiting to be accepted)",
		Knob:               "net.core.somaxconn",
		Scope:              ScopeBurst,
		Value:              value,
		ConnectionsAllowed: n,
		Note: "herald's listen backlog is clamped to this, read once when herald starts (restart it after a change). " +
			"In a reconnect storm, connects beyond it are dropped and retried by clients a second or more later.",
		Fix: fixes,
	})
}

// linuxPorts reads the ephemeral port range.
func (c *checker) linuxPorts() {
	const knob = "net.ipv4.ip_local_port_range"
	f, err := c.fields(knob, 2)
	if err != nil {
		c.skip(knob, err)
		return
	}
	c.addPorts(knob, f[0], f[1], sysctlFixes("linux", knob, "1024 65535", false))
}

// addPorts adds the ephemeral port range limit, for any OS.
func (c *checker) addPorts(knob string, first, last uint64, fixes []Fix) {
	var ports uint64
	if last >= first {
		ports = last - first + 1
	}
	note := "Caps connections from one source address to one herald address and port: " +
		"a load generator or a proxy in front of herald."
	if ports > 0 && ports < c.target {
		note += fmt.Sprintf(" %s connections need %d source addresses (127.0.0.2, 127.0.0.3, … on loopback), "+
			"or IP_BIND_ADDRESS_NO_PORT and several herald addresses.", group(c.target), (c.target+ports-1)/ports)
	}
	c.add(Limit{
		Name:               "ephemeral ports of the connecting side",
		Knob:               knob,
		Scope:              ScopePeer,
		Value:              fmt.Sprintf("%d-%d (%s ports)", first, last, num(ports)),
		ConnectionsAllowed: ports,
		Note:               note,
		Fix:                fixes,
	})
}

// uint reads a sysctl holding one unsigned number.
func (c *checker) uint(name string) (uint64, error) {
	f, err := c.fields(name, 1)
	if err != nil {
		return 0, err
	}
	return f[0], nil
}

// fields reads a sysctl holding at least n unsigned numbers.
func (c *checker) fields(name string, n int) ([]uint64, error) {
	v, err := c.src.Sysctl(name)
	if err != nil {
		return nil, err
	}
	return parseUints(v, n)
}

// parseUints parses at least n blank-separated unsigned numbers.
func parseUints(v string, n int) ([]uint64, error) {
	parts := strings.Fields(v)
	if len(parts) < n {
		return nil, fmt.Errorf("want %d numbers, got %q", n, v)
	}
	out := make([]uint64, len(parts))
	for i, p := range parts {
		x, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse %q: %w", v, err)
		}
		out[i] = x
	}
	return out, nil
}
