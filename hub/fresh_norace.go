//go:build !race

package hub

// checkFresh is off outside race builds (see fresh_race.go).
const checkFresh = false
