package doctor

import "fmt"

// bsd reads the limits of macOS and FreeBSD. It runs on any OS so that
// tests can feed it the inputs of such a box.
func (c *checker) bsd() {
	goos := c.src.OS()
	c.maxFilesPerProc(goos)
	c.maxFiles(goos)
	if goos == "freebsd" {
		c.maxSockets()
	}
	c.bsdBacklog(goos)
	c.bsdPorts(goos)
}

// maxFilesPerProc reads kern.maxfilesperproc, which caps RLIMIT_NOFILE.
func (c *checker) maxFilesPerProc(goos string) {
	const knob = "kern.maxfilesperproc"
	n, err := c.uint(knob)
	if err != nil {
		c.skip(knob, err)
		return
	}
	want := c.nofileTarget()
	c.add(Limit{
		Name:               "open files per process, kernel ceiling",
		Knob:               knob,
		Scope:              ScopeHeld,
		Value:              num(n),
		ConnectionsAllowed: c.conns(n, true),
		Note:               "No process may open more files than this, whatever its RLIMIT_NOFILE says.",
		Fix:                sysctlFixes(goos, knob, dec(max(n, want)), false),
	})
}

// maxFiles reads kern.maxfiles, the open files of the whole system.
func (c *checker) maxFiles(goos string) {
	const knob = "kern.maxfiles"
	n, err := c.uint(knob)
	if err != nil {
		c.skip(knob, err)
		return
	}
	used, err := c.uint("kern.openfiles") // FreeBSD
	if err != nil {
		used, _ = c.uint("kern.num_files") // macOS
	}
	want := roundPow2(c.files(c.target) + used + c.o.ReservedFiles)
	c.add(Limit{
		Name:               "open files on the whole system",
		Knob:               knob,
		Scope:              ScopeHeld,
		Value:              fmt.Sprintf("%s (%s in use)", num(n), num(used)),
		ConnectionsAllowed: c.conns(subSat(n, used), false),
		Note:               "Shared by every process on the machine; raise it above kern.maxfilesperproc.",
		Fix:                sysctlFixes(goos, knob, dec(max(n, want)), goos == "freebsd"),
	})
}

// maxSockets reads FreeBSD's kern.ipc.maxsockets, the sockets of the whole
// system.
func (c *checker) maxSockets() {
	const knob = "kern.ipc.maxsockets"
	n, err := c.uint(knob)
	if err != nil {
		c.skip(knob, err)
		return
	}
	used, _ := c.uint("kern.ipc.numopensockets")
	want := roundPow2(c.files(c.target) + used)
	c.add(Limit{
		Name:               "sockets on the whole system",
		Knob:               knob,
		Scope:              ScopeHeld,
		Value:              fmt.Sprintf("%s (%s in use)", num(n), num(used)),
		ConnectionsAllowed: c.conns(subSat(n, used), false),
		Note:               "Sized at boot from memory; it can only be raised.",
		Fix:                sysctlFixes("freebsd", knob, dec(max(n, want)), true),
	})
}

// bsdBacklog reads the accept-queue cap.
func (c *checker) bsdBacklog(goos string) {
	knob := "kern.ipc.somaxconn"
	if goos == "freebsd" {
		knob = "kern.ipc.soacceptqueue" // the current name; somaxconn is its alias
	}
	n, err := c.uint(knob)
	if err != nil && goos == "freebsd" {
		knob = "kern.ipc.somaxconn"
		n, err = c.uint(knob)
	}
	if err != nil {
		c.skip(knob, err)
		return
	}
	c.add(Limit{
		Name:               "listen backlog (connects waiting to be accepted)",
		Knob:               knob,
		Scope:              ScopeBurst,
		Value:              num(n),
		ConnectionsAllowed: n,
		Note: "herald's listen backlog is clamped to this (and to 65535), read once when herald starts. " +
			"In a reconnect storm, connects beyond it are dropped and retried by clients a second or more later.",
		Fix: sysctlFixes(goos, knob, dec(max(n, min(c.target, maxBacklog))), false),
	})
}

// bsdPorts reads the ephemeral port range.
func (c *checker) bsdPorts(goos string) {
	first, err := c.uint("net.inet.ip.portrange.first")
	if err != nil {
		c.skip("net.inet.ip.portrange.first", err)
		return
	}
	last, err := c.uint("net.inet.ip.portrange.last")
	if err != nil {
		c.skip("net.inet.ip.portrange.last", err)
		return
	}
	fixes := append(sysctlFixes(goos, "net.inet.ip.portrange.first", "1024", false),
		sysctlFixes(goos, "net.inet.ip.portrange.last", "65535", false)...)
	c.addPorts("net.inet.ip.portrange", first, last, fixes)
}
