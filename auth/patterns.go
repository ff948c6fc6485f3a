package auth

// Patterns is a compiled list of channel patterns, in the syntax of the
// anonymous_subscribe patterns (see the package doc), for settings that
// name channels by pattern outside a token (presence_channels). Patterns
// using {sub} match nothing: there is no subject. The nil *Patterns
// matches nothing. Immutable; safe for concurrent use.
type Patterns struct{ ps []pattern }

// CompilePatterns compiles src; an empty list gives Patterns that match
// nothing.
func CompilePatterns(src []string) (*Patterns, error) {
	ps, err := compilePatterns(src, "")
	if err != nil {
		return nil, err
	}
	return &Patterns{ps: ps}, nil
}

// Match reports whether a pattern matches channel (a personal user:
// channel only by a pattern starting with "user:"). It does not allocate.
func (p *Patterns) Match(channel string) bool {
	return p != nil && matchAny(p.ps, channel)
}
