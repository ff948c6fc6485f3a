//go:build race

package server

// checkViews makes race builds (the test suites' -race runs) scribble over
// views handed to Apps once they expire, so that one kept too long reads
// garbage in a test instead of, rarely, in production.
const checkViews = true

// scribble overwrites b, a view that has expired.
func scribble(b []byte) {
	for i := range b {
		b[i] = '#'
	}
}
