package doctor

import (
	"bufio"
	"fmt"
	"io"
	"text/tabwriter"
)

// title heads the group of limits of one scope in the text report.
func (s Scope) title() string {
	switch s {
	case ScopeHeld:
		return "Limits on connections held"
	case ScopeBusy:
		return "Limits on connections with data in flight at once"
	case ScopeBurst:
		return "Limits on connects arriving at once"
	default:
		return "Limits on the connecting side (load generator, proxy), per source address"
	}
}

// WriteText writes the report in plain words: the capacity and the first
// limit with its fix, warnings, then every limit, and how to raise each one
// that falls short of the target.
func (r Report) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	kernel := r.OS
	if r.Kernel != "" {
		kernel += " " + r.Kernel
	}
	fmt.Fprintf(b, "herald doctor on %s\n\n", kernel)
	if f, ok := r.First(); ok {
		fmt.Fprintf(b, "This process can hold about %s connections", group(r.Capacity))
		switch {
		case r.FilesPerConn > 1:
			fmt.Fprintf(b, " (wss://, %d open files each)", r.FilesPerConn)
		case r.TLS:
			fmt.Fprintf(b, " (wss://: 1 open file per wss connection, %d for a TLS 1.2 client)", TLSBridgeFilesPerConn)
		}
		fmt.Fprintln(b, ".")
		fmt.Fprintf(b, "First limit: %s (%s = %s).\n", f.Name, f.Knob, f.Value)
		if len(f.Fix) > 0 {
			fmt.Fprintf(b, "Raise it (to %s connections) with:\n", group(r.Target))
			writeFixes(b, f.Fix, "  ")
		}
	} else {
		fmt.Fprintln(b, "No limit on connections could be read on this machine.")
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(b, "\nWARNING: %s\n", warn)
	}

	fmt.Fprintf(b, "\nEach limit compared with what %s connections need:\n", group(r.Target))
	for _, scope := range []Scope{ScopeHeld, ScopeBusy, ScopeBurst, ScopePeer} {
		var ls []Limit
		for _, l := range r.Limits {
			if l.Scope == scope {
				ls = append(ls, l)
			}
		}
		if len(ls) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n%s:\n", scope.title())
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  setting\tvalue\tallows\tneeds\t\n")
		for _, l := range ls {
			mark := "ok"
			if l.Short {
				mark = "SHORT"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", l.Knob, l.Value, group(l.ConnectionsAllowed), group(l.Needed), mark)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("doctor: write report: %w", err)
		}
	}

	m := r.Memory
	fmt.Fprintf(b, "\nMemory per idle connection: %s (kernel %s + herald %s); %s available.\n",
		bytesStr(m.PerConnBytes), bytesStr(m.KernelBytesPerConn), bytesStr(m.UserBytesPerConn), bytesStr(m.AvailableBytes))
	if m.TCPBufDefaultBytes > 0 {
		fmt.Fprintf(b, "A busy connection's socket buffers: %s at the tcp_rmem/tcp_wmem defaults, %s when squeezed.\n",
			bytesStr(m.TCPBufDefaultBytes), bytesStr(m.TCPBufMinBytes))
	}

	first := true
	for _, l := range r.Limits {
		if !l.Short {
			continue
		}
		if first {
			fmt.Fprintf(b, "\nWhat falls short of %s connections, and how to raise it:\n", group(r.Target))
			first = false
		}
		fmt.Fprintf(b, "\n* %s (%s = %s): allows %s, needs %s.\n", l.Name, l.Knob, l.Value, group(l.ConnectionsAllowed), group(l.Needed))
		if l.Note != "" {
			fmt.Fprintf(b, "  %s\n", l.Note)
		}
		writeFixes(b, l.Fix, "  ")
	}
	for i, s := range r.Skipped {
		if i == 0 {
			fmt.Fprintln(b, "\nNot read:")
		}
		fmt.Fprintf(b, "  %s\n", s)
	}
	if err := b.Flush(); err != nil {
		return fmt.Errorf("doctor: write report: %w", err)
	}
	return nil
}

// writeFixes writes each fix as its place followed by its lines.
func writeFixes(w io.Writer, fixes []Fix, indent string) {
	for _, f := range fixes {
		fmt.Fprintf(w, "%s%s:\n", indent, f.Where)
		for _, line := range f.Lines {
			fmt.Fprintf(w, "%s    %s\n", indent, line)
		}
	}
}
