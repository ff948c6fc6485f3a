package poller

import (
	"fmt"
	"os"
	"testing"
)

// backendEnv names the environment variable that runs this package's tests
// on another backend than the platform's (HERALD_POLLER_BACKEND=gnet on
// Linux): every Config that leaves Backend empty then gets it. The tests
// that name a backend keep theirs.
const backendEnv = "HERALD_POLLER_BACKEND"

func TestMain(m *testing.M) {
	if b := os.Getenv(backendEnv); b != "" {
		if b != BackendEpoll && b != BackendGnet {
			fmt.Fprintln(os.Stderr, errBackend(b))
			os.Exit(2)
		}
		defaultBackend = b
	}
	os.Exit(m.Run())
}
