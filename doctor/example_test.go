package doctor_test

import (
	"errors"
	"fmt"

	"github.com/herald-push/herald/doctor"
)

// box is a Source with a 20000-file hard limit and 8 GiB free.
type box struct{}

func (box) OS() string { return "linux" }
func (box) Sysctl(name string) (string, error) {
	switch name {
	case "fs.nr_open":
		return "1048576", nil
	case "net.core.somaxconn":
		return "4096", nil
	}
	return "", errors.New("not set")
}
func (box) Rlimit() (uint64, uint64, error) { return 1024, 20000, nil }
func (box) MemAvailable() (uint64, error)   { return 8 << 30, nil }

func ExampleCheck() {
	r := doctor.Check(box{}, doctor.Options{MaxConns: 100_000})
	first, _ := r.First()
	fmt.Printf("capacity %d, first limit %s (%s)\n", r.Capacity, first.Knob, first.Value)
	fmt.Println(first.Fix[0].Lines[0])
	fmt.Println(r.Warnings[0])
	// Output:
	// capacity 19936, first limit RLIMIT_NOFILE (soft 1024, hard 20000)
	// ulimit -n 131072
	// max connections is set to 100,000, above the 19,936 this machine allows: open files per process (soft 1024, hard 20000) caps it first
}
