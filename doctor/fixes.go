package doctor

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// sysctlFixes returns the commands and configuration lines that set a
// kernel parameter now and keep it across reboots on the given OS. A loader
// tunable (FreeBSD) is also written to /boot/loader.conf.
func sysctlFixes(goos, knob, value string, loader bool) []Fix {
	quoted := value
	if strings.ContainsRune(value, ' ') {
		quoted = strconv.Quote(value)
	}
	switch goos {
	case "linux":
		return []Fix{
			{Where: "now, as root", Lines: []string{fmt.Sprintf("sysctl -w %s=%s", knob, quoted)}},
			{Where: "/etc/sysctl.d/99-herald.conf (kept across reboots; apply with sysctl --system)",
				Lines: []string{fmt.Sprintf("%s = %s", knob, value)}},
		}
	case "darwin":
		return []Fix{
			{Where: "now, as root", Lines: []string{fmt.Sprintf("sysctl -w %s=%s", knob, quoted)}},
			{Where: "/etc/sysctl.conf (read at boot)", Lines: []string{fmt.Sprintf("%s=%s", knob, value)}},
		}
	case "freebsd":
		fixes := []Fix{
			{Where: "now, as root", Lines: []string{fmt.Sprintf("sysctl %s=%s", knob, quoted)}},
			{Where: "/etc/sysctl.conf (kept across reboots)", Lines: []string{fmt.Sprintf("%s=%s", knob, value)}},
		}
		if loader {
			fixes = append(fixes, Fix{Where: "/boot/loader.conf (boot-time tunable)",
				Lines: []string{fmt.Sprintf("%s=%q", knob, value)}})
		}
		return fixes
	}
	return nil
}

// mergeFixes joins the lines of fixes that go to the same place, keeping
// the order in which places first appear.
func mergeFixes(fixes []Fix) []Fix {
	var out []Fix
	at := map[string]int{}
	for _, f := range fixes {
		if i, ok := at[f.Where]; ok {
			out[i].Lines = append(out[i].Lines, f.Lines...)
			continue
		}
		at[f.Where] = len(out)
		out = append(out, Fix{Where: f.Where, Lines: slices.Clone(f.Lines)})
	}
	return out
}

// nofileFixes returns the ways to raise RLIMIT_NOFILE to n on the given OS.
func nofileFixes(goos string, n uint64) []Fix {
	v := dec(n)
	shell := Fix{
		Where: "in the shell that starts herald (raising the hard limit needs root)",
		Lines: []string{"ulimit -n " + v},
	}
	switch goos {
	case "linux":
		return []Fix{
			shell,
			{Where: "systemd: /etc/systemd/system/herald.service.d/limits.conf, then systemctl daemon-reload and restart herald",
				Lines: []string{"[Service]", "LimitNOFILE=" + v}},
			{Where: "login sessions: /etc/security/limits.conf",
				Lines: []string{"*    soft    nofile    " + v, "*    hard    nofile    " + v}},
			{Where: "containers", Lines: []string{fmt.Sprintf("docker run --ulimit nofile=%s:%s ...", v, v)}},
		}
	case "darwin":
		return []Fix{
			shell,
			{Where: "launchd, for every process it starts (as root)", Lines: []string{fmt.Sprintf("launchctl limit maxfiles %s %s", v, v)}},
		}
	case "freebsd":
		return []Fix{
			shell,
			{Where: "login class: /etc/login.conf (default class), then cap_mkdb /etc/login.conf",
				Lines: []string{":openfiles=" + v + ":"}},
		}
	}
	return []Fix{shell}
}

// dec formats n in decimal, for commands and configuration lines.
func dec(n uint64) string { return strconv.FormatUint(n, 10) }

// num formats a limit as read: decimal, or "unlimited".
func num(n uint64) string {
	if n == Unlimited {
		return "unlimited"
	}
	return dec(n)
}

// group formats n with thousands separators, for sentences.
func group(n uint64) string {
	if n == Unlimited {
		return "unlimited"
	}
	s := dec(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// bytesStr formats a byte count in binary units.
func bytesStr(n uint64) string {
	const unit = 1024
	if n < unit {
		return dec(n) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
