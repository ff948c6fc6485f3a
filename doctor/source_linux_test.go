//go:build linux

package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes files (path → content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const fakeMeminfo = "MemTotal:       24684084 kB\nMemFree:        20000000 kB\nMemAvailable:   24332056 kB\n"

func TestLinuxSourceSysctl(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"proc/sys/fs/nr_open":                   "1048576\n",
		"proc/sys/net/ipv4/tcp_mem":             "287898\t383867\t575796\n",
		"proc/sys/net/ipv4/ip_local_port_range": "32768\t60999\n",
	})
	src := linuxSource{proc: filepath.Join(root, "proc"), cgroup: filepath.Join(root, "cgroup")}
	testCases := []struct {
		name, want string
		wantErr    bool
	}{
		{"fs.nr_open", "1048576", false},
		{"net.ipv4.tcp_mem", "287898 383867 575796", false},
		{"net.ipv4.ip_local_port_range", "32768 60999", false},
		{"net.netfilter.nf_conntrack_max", "", true},
	}
	for _, tc := range testCases {
		got, err := src.Sysctl(tc.name)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("Sysctl(%s) = %q, %v; want %q, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), tc.name) {
			t.Errorf("Sysctl(%s) error %q does not name the parameter", tc.name, err)
		}
	}
}

func TestLinuxSourceMemAvailable(t *testing.T) {
	t.Parallel()
	const meminfoBytes = 24332056 * 1024
	testCases := []struct {
		name    string
		files   map[string]string
		want    uint64
		wantErr bool
	}{
		{
			name:  "no cgroup file",
			files: map[string]string{"proc/meminfo": fakeMeminfo},
			want:  meminfoBytes,
		},
		{
			name: "cgroup v1 only",
			files: map[string]string{"proc/meminfo": fakeMeminfo,
				"proc/self/cgroup": "12:memory:/user.slice\n"},
			want: meminfoBytes,
		},
		{
			name: "unlimited cgroup",
			files: map[string]string{"proc/meminfo": fakeMeminfo,
				"proc/self/cgroup": "0::/system.slice/herald.service\n",
				"cgroup/system.slice/herald.service/memory.max": "max\n"},
			want: meminfoBytes,
		},
		{
			name: "parent cgroup caps memory",
			files: map[string]string{"proc/meminfo": fakeMeminfo,
				"proc/self/cgroup": "0::/system.slice/herald.service\n",
				"cgroup/system.slice/herald.service/memory.max":     "max\n",
				"cgroup/system.slice/memory.max":                    "2147483648\n",
				"cgroup/system.slice/memory.current":                "1073741824\n",
				"cgroup/system.slice/herald.service/memory.current": "1000\n"},
			want: 1 << 30,
		},
		{
			name: "cgroup over its cap leaves nothing",
			files: map[string]string{"proc/meminfo": fakeMeminfo,
				"proc/self/cgroup":          "0::/box\n",
				"cgroup/box/memory.max":     "1000\n",
				"cgroup/box/memory.current": "5000\n"},
			want: 0,
		},
		{
			name:    "no MemAvailable",
			files:   map[string]string{"proc/meminfo": "MemTotal: 1 kB\n"},
			wantErr: true,
		},
		{
			name:    "no meminfo",
			files:   map[string]string{},
			wantErr: true,
		},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeTree(t, root, tc.files)
			src := linuxSource{proc: filepath.Join(root, "proc"), cgroup: filepath.Join(root, "cgroup")}
			got, err := src.MemAvailable()
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("MemAvailable() = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestLiveFirstLimit runs the doctor on this machine: where the hard
// open-file limit is small (≤ 65536), it must be named first, with its fix.
func TestLiveFirstLimit(t *testing.T) {
	_, hard, err := Live().Rlimit()
	if err != nil {
		t.Fatal(err)
	}
	if hard > 65536 {
		t.Skipf("hard RLIMIT_NOFILE is %d: not the small-limit machine this test is about", hard)
	}
	r := Check(Live(), Options{})
	first, ok := r.First()
	if !ok || first.Knob != "RLIMIT_NOFILE" {
		t.Fatalf("first limit = %q, want RLIMIT_NOFILE; limits %v", first.Knob, knobs(r))
	}
	if r.Capacity != hard-DefaultReservedFiles {
		t.Errorf("Capacity = %d, want %d", r.Capacity, hard-DefaultReservedFiles)
	}
	if !strings.Contains(fixText(first), "ulimit -n ") || !strings.Contains(fixText(first), "LimitNOFILE=") {
		t.Errorf("first limit's fix lacks ulimit/LimitNOFILE:\n%s", fixText(first))
	}
	if r.Kernel == "" || r.Memory.AvailableBytes == 0 {
		t.Errorf("kernel %q, available memory %d: live inputs not read", r.Kernel, r.Memory.AvailableBytes)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if want := "First limit: open files per process (RLIMIT_NOFILE"; !strings.Contains(b.String(), want) {
		t.Errorf("text lacks %q:\n%s", want, b.String())
	}
}
