package doctor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
)

// fakeSource is a Source fed from fixed values.
type fakeSource struct {
	goos       string
	sysctl     map[string]string
	soft, hard uint64
	rlimitErr  error
	mem        uint64
	memErr     error
}

func (f fakeSource) OS() string { return f.goos }

func (f fakeSource) Sysctl(name string) (string, error) {
	v, ok := f.sysctl[name]
	if !ok {
		return "", fmt.Errorf("sysctl %s: no such parameter", name)
	}
	return v, nil
}

func (f fakeSource) Rlimit() (uint64, uint64, error) { return f.soft, f.hard, f.rlimitErr }

func (f fakeSource) MemAvailable() (uint64, error) { return f.mem, f.memErr }

// linuxBox returns the inputs of a Linux 6.x box like the project's test
// machines: 20000 open files, 24 GiB, conntrack loaded, default TCP knobs.
func linuxBox() fakeSource {
	return fakeSource{
		goos: "linux",
		sysctl: map[string]string{
			"kernel.osrelease":                 "6.18.44",
			"fs.nr_open":                       "1048576",
			"fs.file-max":                      "2466170",
			"fs.file-nr":                       "416 0 2466170",
			"net.netfilter.nf_conntrack_max":   "262144",
			"net.netfilter.nf_conntrack_count": "0",
			"net.ipv4.tcp_mem":                 "287898 383867 575796",
			"net.ipv4.tcp_rmem":                "4096 131072 33554432",
			"net.ipv4.tcp_wmem":                "4096 16384 4194304",
			"net.core.somaxconn":               "4096",
			"net.ipv4.tcp_max_syn_backlog":     "2048",
			"net.ipv4.ip_local_port_range":     "32768 60999",
		},
		soft: 20000, hard: 20000,
		mem: 24 << 30,
	}
}

// with returns a copy of f with the given sysctls set ("" deletes one).
func (f fakeSource) with(kv ...string) fakeSource {
	f.sysctl = maps.Clone(f.sysctl)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(f.sysctl, kv[i])
		} else {
			f.sysctl[kv[i]] = kv[i+1]
		}
	}
	return f
}

// darwinBox returns the inputs of a stock macOS laptop.
func darwinBox() fakeSource {
	return fakeSource{
		goos: "darwin",
		sysctl: map[string]string{
			"kern.osrelease":              "23.4.0",
			"kern.maxfiles":               "122880",
			"kern.maxfilesperproc":        "61440",
			"kern.num_files":              "3000",
			"kern.ipc.somaxconn":          "128",
			"net.inet.ip.portrange.first": "49152",
			"net.inet.ip.portrange.last":  "65535",
		},
		soft: 256, hard: Unlimited,
		mem: 8 << 30,
	}
}

// freebsdBox returns the inputs of a small FreeBSD server.
func freebsdBox() fakeSource {
	return fakeSource{
		goos: "freebsd",
		sysctl: map[string]string{
			"kern.osrelease":              "14.1-RELEASE",
			"kern.maxfiles":               "1000000",
			"kern.maxfilesperproc":        "900000",
			"kern.openfiles":              "200",
			"kern.ipc.maxsockets":         "250000",
			"kern.ipc.numopensockets":     "50",
			"kern.ipc.soacceptqueue":      "4096",
			"net.inet.ip.portrange.first": "10000",
			"net.inet.ip.portrange.last":  "65535",
		},
		soft: 900000, hard: 900000,
		mem: 16 << 30,
	}
}

// limitByKnob returns the report's limit with the given knob.
func limitByKnob(t *testing.T, r Report, knob string) Limit {
	t.Helper()
	for _, l := range r.Limits {
		if l.Knob == knob {
			return l
		}
	}
	t.Fatalf("no limit %s in report; have %v", knob, knobs(r))
	return Limit{}
}

func knobs(r Report) []string {
	var out []string
	for _, l := range r.Limits {
		out = append(out, l.Knob)
	}
	return out
}

// fixText flattens a limit's fixes for substring checks.
func fixText(l Limit) string {
	var b strings.Builder
	for _, f := range l.Fix {
		b.WriteString(f.Where + "\n" + strings.Join(f.Lines, "\n") + "\n")
	}
	return b.String()
}

func TestCheck(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name         string
		src          fakeSource
		opts         Options
		wantFirst    string // knob of the first limit; "" for none
		wantCapacity uint64
		// wantShort maps knobs to whether they must be Short.
		wantShort map[string]bool
		// wantFix maps knobs to lines their fixes must contain.
		wantFix map[string][]string
		// wantNote maps knobs to words their notes must contain.
		wantNote    map[string][]string
		wantAbsent  []string // knobs that must not be reported
		wantWarning string
		wantSkipped string
	}{
		{
			name:         "20000 hard limit caps first",
			src:          linuxBox(),
			wantFirst:    "RLIMIT_NOFILE",
			wantCapacity: 20000 - DefaultReservedFiles,
			wantShort: map[string]bool{
				"RLIMIT_NOFILE": true, "fs.nr_open": false, "fs.file-max": false, "memory": false,
				"net.netfilter.nf_conntrack_max": true, "net.ipv4.tcp_mem": true,
				"net.core.somaxconn": true, "net.ipv4.ip_local_port_range": true,
			},
			wantFix: map[string][]string{
				"RLIMIT_NOFILE": {"ulimit -n 1048576", "LimitNOFILE=1048576",
					"*    hard    nofile    1048576", "docker run --ulimit nofile=1048576:1048576 ..."},
				"net.core.somaxconn": {"sysctl -w net.core.somaxconn=65535", "net.core.somaxconn = 65535",
					"sysctl -w net.ipv4.tcp_max_syn_backlog=65535"},
				"net.ipv4.tcp_mem":               {`sysctl -w net.ipv4.tcp_mem="500000 666666 1000000"`},
				"net.netfilter.nf_conntrack_max": {"sysctl -w net.netfilter.nf_conntrack_max=1048576", "--notrack"},
			},
			wantNote: map[string][]string{
				"net.ipv4.ip_local_port_range": {"36 source addresses"},
				"net.ipv4.tcp_mem":             {"144.0 KiB", "8.0 KiB"},
			},
		},
		{
			name:         "max connections above the open-file limit warns",
			src:          linuxBox(),
			opts:         Options{MaxConns: 50000},
			wantFirst:    "RLIMIT_NOFILE",
			wantCapacity: 19936,
			wantShort:    map[string]bool{"RLIMIT_NOFILE": true, "net.netfilter.nf_conntrack_max": false},
			wantFix:      map[string][]string{"RLIMIT_NOFILE": {"ulimit -n 65536"}},
			wantWarning:  "max connections is set to 50,000, above the 19,936 this machine allows",
		},
		{
			name: "huge open-file limit, small somaxconn",
			src: func() fakeSource {
				f := linuxBox().with("net.core.somaxconn", "128", "net.ipv4.tcp_max_syn_backlog", "65535",
					"fs.nr_open", "4194304")
				f.soft, f.hard = 2097152, 2097152
				return f
			}(),
			wantFirst:    "net.netfilter.nf_conntrack_max",
			wantCapacity: 262144,
			wantShort:    map[string]bool{"RLIMIT_NOFILE": false, "net.core.somaxconn": true},
			wantFix:      map[string][]string{"net.core.somaxconn": {"sysctl -w net.core.somaxconn=65535"}},
		},
		{
			name:         "small port range",
			src:          linuxBox().with("net.ipv4.ip_local_port_range", "60000 60999"),
			opts:         Options{MaxConns: 10000},
			wantFirst:    "RLIMIT_NOFILE",
			wantCapacity: 19936,
			wantShort:    map[string]bool{"net.ipv4.ip_local_port_range": true, "RLIMIT_NOFILE": false},
			wantFix:      map[string][]string{"net.ipv4.ip_local_port_range": {`sysctl -w net.ipv4.ip_local_port_range="1024 65535"`, "net.ipv4.ip_local_port_range = 1024 65535"}},
			wantNote:     map[string][]string{"net.ipv4.ip_local_port_range": {"10 source addresses"}},
		},
		{
			name: "tiny memory caps first",
			src: func() fakeSource {
				f := linuxBox()
				f.mem = 64 << 20
				return f
			}(),
			wantFirst:    "memory",
			wantCapacity: (64 << 20) / (DefaultKernelBytesPerConn + DefaultUserBytesPerConn),
			wantFix:      map[string][]string{"memory": {"MemoryMax=infinity"}},
		},
		{
			name: "bytes per connection is a parameter",
			src: func() fakeSource {
				f := linuxBox()
				f.mem = 64 << 20
				return f
			}(),
			opts:         Options{UserBytesPerConn: 3072, KernelBytesPerConn: 1024},
			wantFirst:    "memory",
			wantCapacity: (64 << 20) / 4096,
		},
		{
			name: "full conntrack table caps first",
			src: func() fakeSource {
				f := linuxBox().with("net.netfilter.nf_conntrack_max", "65536", "net.netfilter.nf_conntrack_count", "60000")
				f.soft, f.hard = 1048576, 1048576
				return f
			}(),
			wantFirst:    "net.netfilter.nf_conntrack_max",
			wantCapacity: 5536,
			wantNote:     map[string][]string{"net.netfilter.nf_conntrack_max": {"60000 entries in use"}},
		},
		{
			name:        "conntrack absent is no limit",
			src:         linuxBox().with("net.netfilter.nf_conntrack_max", "", "net.netfilter.nf_conntrack_count", ""),
			wantFirst:   "RLIMIT_NOFILE",
			wantAbsent:  []string{"net.netfilter.nf_conntrack_max"},
			wantSkipped: "net.netfilter.nf_conntrack_max: not present",
		},
		{
			name:         "nr_open below the target asks to raise it first",
			src:          linuxBox().with("fs.nr_open", "65536"),
			opts:         Options{MaxConns: 100000},
			wantFirst:    "RLIMIT_NOFILE",
			wantCapacity: 19936,
			wantShort:    map[string]bool{"fs.nr_open": true},
			wantFix:      map[string][]string{"fs.nr_open": {"sysctl -w fs.nr_open=131072", "fs.nr_open = 131072"}},
			wantNote:     map[string][]string{"fs.nr_open": {"Raise it before raising RLIMIT_NOFILE to 131072"}},
			wantWarning:  "above the 19,936 this machine allows: open files per process",
		},
		{
			name:         "macOS: kern.maxfilesperproc caps an unlimited rlimit",
			src:          darwinBox(),
			wantFirst:    "kern.maxfilesperproc",
			wantCapacity: 61440 - DefaultReservedFiles,
			wantShort:    map[string]bool{"RLIMIT_NOFILE": false, "kern.maxfiles": true, "kern.ipc.somaxconn": true},
			wantFix: map[string][]string{
				"kern.maxfilesperproc":  {"sysctl -w kern.maxfilesperproc=1048576", "kern.maxfilesperproc=1048576"},
				"kern.ipc.somaxconn":    {"sysctl -w kern.ipc.somaxconn=65535"},
				"net.inet.ip.portrange": {"sysctl -w net.inet.ip.portrange.first=1024"},
			},
			wantAbsent: []string{"fs.nr_open", "net.ipv4.tcp_mem"},
		},
		{
			name:         "macOS with a finite rlimit names launchctl",
			src:          func() fakeSource { f := darwinBox(); f.soft, f.hard = 10240, 10240; return f }(),
			wantFirst:    "RLIMIT_NOFILE",
			wantCapacity: 10240 - DefaultReservedFiles,
			wantFix:      map[string][]string{"RLIMIT_NOFILE": {"launchctl limit maxfiles 1048576 1048576", "ulimit -n 1048576"}},
		},
		{
			name:         "FreeBSD: maxsockets caps first, loader.conf fix",
			src:          freebsdBox(),
			wantFirst:    "kern.ipc.maxsockets",
			wantCapacity: 249950,
			wantFix: map[string][]string{
				"kern.ipc.maxsockets": {"sysctl kern.ipc.maxsockets=1048576", `kern.ipc.maxsockets="1048576"`},
				"RLIMIT_NOFILE":       {":openfiles=1048576:"},
			},
			wantShort: map[string]bool{"kern.ipc.soacceptqueue": true},
		},
		{
			name: "nothing readable",
			src: fakeSource{goos: "plan9", rlimitErr: errors.New("no rlimit"),
				memErr: errors.New("no meminfo")},
			wantFirst:    "",
			wantCapacity: Unlimited,
			wantSkipped:  "RLIMIT_NOFILE: no rlimit",
		},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Check(tc.src, tc.opts)
			first, ok := r.First()
			if tc.wantFirst == "" {
				if ok {
					t.Errorf("First() = %s, want none", first.Knob)
				}
			} else if !ok || first.Knob != tc.wantFirst {
				t.Errorf("First() = %q, want %q (order %v)", first.Knob, tc.wantFirst, knobs(r))
			}
			if tc.wantCapacity != 0 && r.Capacity != tc.wantCapacity {
				t.Errorf("Capacity = %d, want %d", r.Capacity, tc.wantCapacity)
			}
			for knob, want := range tc.wantShort {
				if l := limitByKnob(t, r, knob); l.Short != want {
					t.Errorf("%s: Short = %v, want %v (allows %d, needs %d)", knob, l.Short, want, l.ConnectionsAllowed, l.Needed)
				}
			}
			for knob, lines := range tc.wantFix {
				got := fixText(limitByKnob(t, r, knob))
				for _, line := range lines {
					if !strings.Contains(got, line) {
						t.Errorf("%s fix lacks %q; got:\n%s", knob, line, got)
					}
				}
			}
			for knob, words := range tc.wantNote {
				note := limitByKnob(t, r, knob).Note
				for _, w := range words {
					if !strings.Contains(note, w) {
						t.Errorf("%s note lacks %q; got %q", knob, w, note)
					}
				}
			}
			for _, knob := range tc.wantAbsent {
				for _, l := range r.Limits {
					if l.Knob == knob {
						t.Errorf("%s reported, want absent", knob)
					}
				}
			}
			if tc.wantWarning != "" && !strings.Contains(strings.Join(r.Warnings, "\n"), tc.wantWarning) {
				t.Errorf("Warnings = %q, want one containing %q", r.Warnings, tc.wantWarning)
			}
			if tc.wantWarning == "" && len(r.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", r.Warnings)
			}
			if tc.wantSkipped != "" && !strings.Contains(strings.Join(r.Skipped, "\n"), tc.wantSkipped) {
				t.Errorf("Skipped = %q, want one containing %q", r.Skipped, tc.wantSkipped)
			}
			checkOrder(t, r)
		})
	}
}

// checkOrder asserts the report's invariants: scopes in order, ascending
// within the held scope, fixes exactly on the short limits.
func checkOrder(t *testing.T, r Report) {
	t.Helper()
	for i := 1; i < len(r.Limits); i++ {
		a, b := r.Limits[i-1], r.Limits[i]
		if a.Scope.rank() > b.Scope.rank() {
			t.Errorf("limit %s (%s) before %s (%s)", a.Knob, a.Scope, b.Knob, b.Scope)
		}
		if a.Scope == b.Scope && a.ConnectionsAllowed > b.ConnectionsAllowed {
			t.Errorf("limit %s (%d) before smaller %s (%d)", a.Knob, a.ConnectionsAllowed, b.Knob, b.ConnectionsAllowed)
		}
	}
	for _, l := range r.Limits {
		if l.Short != (len(l.Fix) > 0) {
			t.Errorf("%s: Short = %v but %d fixes", l.Knob, l.Short, len(l.Fix))
		}
	}
}

func TestWriteText(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name string
		src  fakeSource
		opts Options
		want []string
		not  []string
	}{
		{
			name: "20000 hard limit",
			src:  linuxBox(),
			want: []string{
				"herald doctor on linux 6.18.44",
				"This process can hold about 19,936 connections.",
				"First limit: open files per process (RLIMIT_NOFILE = soft 20000, hard 20000).",
				"Raise it (to 1,000,000 connections) with:",
				"      ulimit -n 1048576",
				"      LimitNOFILE=1048576",
				"SHORT",
				"What falls short of 1,000,000 connections",
			},
			not: []string{"WARNING", "Not read:"},
		},
		{
			name: "warning and skipped settings",
			src:  linuxBox().with("fs.nr_open", ""),
			opts: Options{MaxConns: 30000},
			want: []string{"WARNING: max connections is set to 30,000", "Not read:", "fs.nr_open: sysctl fs.nr_open: no such parameter"},
		},
		{
			name: "nothing readable",
			src:  fakeSource{goos: "plan9", rlimitErr: errors.New("no"), memErr: errors.New("no")},
			want: []string{"No limit on connections could be read on this machine."},
			not:  []string{"First limit"},
		},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			if err := Check(tc.src, tc.opts).WriteText(&b); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("text lacks %q; got:\n%s", w, out)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out, w) {
					t.Errorf("text has %q; got:\n%s", w, out)
				}
			}
		})
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteTextError(t *testing.T) {
	t.Parallel()
	err := Check(linuxBox(), Options{}).WriteText(failWriter{})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("WriteText error = %v, want one wrapping the writer's", err)
	}
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	r := Check(linuxBox(), Options{MaxConns: 50000})
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"capacity":19936`, `"connections_allowed":19936`, `"knob":"RLIMIT_NOFILE"`,
		`"scope":"held"`, `"short":true`, `"lines":["ulimit -n 65536"]`, `"per_conn_bytes":6144`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Capacity != r.Capacity || len(back.Limits) != len(r.Limits) || back.Limits[0].Fix[0].Lines[0] != r.Limits[0].Fix[0].Lines[0] {
		t.Errorf("JSON round trip changed the report:\n%+v\n%+v", back, r)
	}
}

func TestHelpers(t *testing.T) {
	t.Parallel()
	groups := []struct {
		in   uint64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {19936, "19,936"}, {1048576, "1,048,576"}, {Unlimited, "unlimited"}}
	for _, tc := range groups {
		if got := group(tc.in); got != tc.want {
			t.Errorf("group(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
	sizes := []struct {
		in   uint64
		want string
	}{{512, "512 B"}, {1024, "1.0 KiB"}, {147456, "144.0 KiB"}, {24 << 30, "24.0 GiB"}}
	for _, tc := range sizes {
		if got := bytesStr(tc.in); got != tc.want {
			t.Errorf("bytesStr(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
	pows := []struct{ in, want uint64 }{{1, 1}, {3, 4}, {20064, 32768}, {1000064, 1048576}, {1048576, 1048576}}
	for _, tc := range pows {
		if got := roundPow2(tc.in); got != tc.want {
			t.Errorf("roundPow2(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if got, err := parseUints("4096 131072\t33554432", 3); err != nil || got[2] != 33554432 {
		t.Errorf("parseUints = %v, %v", got, err)
	}
	for _, bad := range []string{"", "12", "a b", "-1 2"} {
		if _, err := parseUints(bad, 2); err == nil {
			t.Errorf("parseUints(%q) succeeded, want error", bad)
		}
	}
	merged := mergeFixes([]Fix{{"a", []string{"1"}}, {"b", []string{"2"}}, {"a", []string{"3"}}})
	if len(merged) != 2 || strings.Join(merged[0].Lines, ",") != "1,3" || merged[1].Where != "b" {
		t.Errorf("mergeFixes = %+v", merged)
	}
}

// TestFilesPerConn: with bridged wss:// connections (3 descriptors each)
// the open-file limits allow a third as many, the fixes aim three times as
// high, and the report says what it counted; on the loop engine a wss://
// connection counts as one, and the report says what a TLS 1.2 client
// costs.
func TestFilesPerConn(t *testing.T) {
	plain := Check(linuxBox(), Options{MaxConns: 10_000})
	loop := Check(linuxBox(), Options{MaxConns: 10_000, TLS: true, FilesPerConn: TLSFilesPerConn})
	if loop.Capacity != plain.Capacity || loop.FilesPerConn != 1 || !loop.TLS {
		t.Fatalf("loop engine: capacity %d (plain %d), %d files per connection", loop.Capacity, plain.Capacity, loop.FilesPerConn)
	}
	var lb strings.Builder
	if err := loop.WriteText(&lb); err != nil || !strings.Contains(lb.String(), "1 open file per wss connection, 3 for a TLS 1.2 client") {
		t.Errorf("loop engine text: %v\n%s", err, lb.String())
	}
	if l := limitByKnob(t, loop, "RLIMIT_NOFILE"); !strings.Contains(l.Note, "1 per wss connection") {
		t.Errorf("loop engine RLIMIT_NOFILE note %q", l.Note)
	}
	wss := Check(linuxBox(), Options{MaxConns: 10_000, TLS: true, FilesPerConn: TLSBridgeFilesPerConn})
	if plain.Capacity != 20000-DefaultReservedFiles || plain.FilesPerConn != 1 {
		t.Fatalf("plain: capacity %d, %d files per connection", plain.Capacity, plain.FilesPerConn)
	}
	if want := uint64(20000-DefaultReservedFiles) / 3; wss.Capacity != want || wss.FilesPerConn != 3 {
		t.Fatalf("wss: capacity %d, %d files per connection, want %d, 3", wss.Capacity, wss.FilesPerConn, want)
	}
	if len(wss.Warnings) != 1 {
		t.Fatalf("wss: warnings %q, want max_conns above capacity", wss.Warnings)
	}
	for _, knob := range []string{"fs.nr_open", "fs.file-max"} {
		p, w := limitByKnob(t, plain, knob), limitByKnob(t, wss, knob)
		if w.ConnectionsAllowed >= p.ConnectionsAllowed {
			t.Errorf("%s: %d connections with wss, %d plain", knob, w.ConnectionsAllowed, p.ConnectionsAllowed)
		}
	}
	if l := limitByKnob(t, wss, "RLIMIT_NOFILE"); !strings.Contains(l.Note, "3 open files") || !strings.Contains(fixText(l), "32768") {
		t.Errorf("RLIMIT_NOFILE note %q, fixes %q: want 3 files a connection, aim at 32768", l.Note, fixText(l))
	}
	var b strings.Builder
	if err := wss.WriteText(&b); err != nil || !strings.Contains(b.String(), "(wss://, 3 open files each)") {
		t.Errorf("text: %v\n%s", err, b.String())
	}
}
