package auth

import (
	"fmt"
	"strings"
)

// userPrefix starts every personal channel; see the package doc on the
// protected namespace.
const userPrefix = "user:"

// subPlaceholder in a pattern is replaced by the token's subject.
const subPlaceholder = "{sub}"

// maxPatterns caps the patterns one list may hold, so a token cannot make
// every subscribe walk an unbounded list.
const maxPatterns = 256

type patternKind uint8

const (
	kindExact    patternKind = iota // lit equals the channel
	kindAny                         // "*": any non-empty channel
	kindPrefix                      // lit followed by a trailing *
	kindSegments                    // elems, then a trailing * when tail
)

// pattern is one compiled channel pattern. Matching is hand-written rather
// than done with path.Match or a regexp because it runs for every subscribe
// and publish on the event loops and must not allocate.
//
// Its small fields come last, sharing a word: 48 bytes, one size class
// below the 56 they took in the order they are read.
type pattern struct {
	lit   string // kindExact, kindPrefix
	elems []elem // kindSegments
	kind  patternKind
	tail  bool // kindSegments: a trailing * follows elems
	// userNS reports whether the pattern may grant channels in the
	// protected "user:" namespace: its source text starts with "user:".
	userNS bool
}

// elem is a literal run or a whole-segment wildcard.
type elem struct {
	lit  string
	star bool
}

// isSep reports whether b separates channel segments.
func isSep(b byte) bool { return b == '.' || b == ':' || b == '/' }

// compilePatterns compiles src for a holder whose subject is subject.
// Patterns using {sub} are dropped when subject is empty: they grant nothing.
func compilePatterns(src []string, subject string) ([]pattern, error) {
	if len(src) > maxPatterns {
		return nil, fmt.Errorf("%d channel patterns, more than %d", len(src), maxPatterns)
	}
	out := make([]pattern, 0, len(src))
	for _, s := range src {
		if subject == "" && strings.Contains(s, subPlaceholder) {
			continue
		}
		p, err := compilePattern(s, subject)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	// Exact patterns first: they are the cheapest to reject.
	exact := 0
	for i := range out {
		if out[i].kind == kindExact {
			out[exact], out[i] = out[i], out[exact]
			exact++
		}
	}
	return out, nil
}

// compilePattern compiles one pattern; see the package doc for the grammar.
func compilePattern(src, subject string) (pattern, error) {
	if src == "" {
		return pattern{}, fmt.Errorf("empty channel pattern")
	}
	p := pattern{userNS: strings.HasPrefix(src, userPrefix)}
	if src == "*" {
		p.kind = kindAny
		return p, nil
	}
	// Without {sub} and with no * but maybe a last one, the usual
	// patterns: src is the literal itself, without a copy.
	if star := strings.IndexByte(src, '*'); !strings.Contains(src, subPlaceholder) && (star < 0 || star == len(src)-1) {
		if star < 0 {
			p.kind, p.lit = kindExact, src
		} else {
			p.kind, p.lit, p.tail = kindPrefix, src[:star], true
		}
		return p, nil
	}
	return compileSegments(p, src, subject)
}

// compileSegments is compilePattern's general case: src read segment by
// segment into p, {sub} replaced by subject.
func compileSegments(p pattern, src, subject string) (pattern, error) {
	var (
		lit   strings.Builder
		elems []elem
	)
	for i := 0; i < len(src); i++ {
		switch {
		case strings.HasPrefix(src[i:], subPlaceholder):
			lit.WriteString(subject)
			i += len(subPlaceholder) - 1
		case src[i] == '*' && i == len(src)-1:
			p.tail = true
		case src[i] == '*':
			if (i > 0 && !isSep(src[i-1])) || !isSep(src[i+1]) {
				return pattern{}, fmt.Errorf("channel pattern %q: an inner * must be a whole segment", src)
			}
			if lit.Len() > 0 {
				elems = append(elems, elem{lit: lit.String()})
				lit.Reset()
			}
			elems = append(elems, elem{star: true})
		default:
			lit.WriteByte(src[i])
		}
	}
	if lit.Len() > 0 {
		elems = append(elems, elem{lit: lit.String()})
	}
	switch {
	case len(elems) == 1 && !elems[0].star && !p.tail:
		p.kind, p.lit = kindExact, elems[0].lit
	case len(elems) == 1 && !elems[0].star:
		p.kind, p.lit = kindPrefix, elems[0].lit
	case len(elems) == 0:
		return pattern{}, fmt.Errorf("channel pattern %q matches nothing", src)
	default:
		p.kind, p.elems = kindSegments, elems
	}
	return p, nil
}

// match reports whether channel matches p. It does not allocate.
func (p *pattern) match(channel string) bool {
	switch p.kind {
	case kindExact:
		return channel == p.lit
	case kindAny:
		return channel != ""
	case kindPrefix:
		return len(channel) > len(p.lit) && channel[:len(p.lit)] == p.lit
	}
	rest := channel
	for _, e := range p.elems {
		if !e.star {
			if !strings.HasPrefix(rest, e.lit) {
				return false
			}
			rest = rest[len(e.lit):]
			continue
		}
		n := 0
		for n < len(rest) && !isSep(rest[n]) {
			n++
		}
		if n == 0 {
			return false
		}
		rest = rest[n:]
	}
	if p.tail {
		return rest != ""
	}
	return rest == ""
}

// matchAny reports whether any of ps grants channel, honouring the
// protected user: namespace. It does not allocate.
func matchAny(ps []pattern, channel string) bool {
	if channel == "" {
		return false
	}
	personal := strings.HasPrefix(channel, userPrefix)
	for i := range ps {
		p := &ps[i]
		if personal && !p.userNS {
			continue
		}
		if p.match(channel) {
			return true
		}
	}
	return false
}
