package codec

import (
	"bytes"
	"strings"
)

// Field returns the value of the request's header field name (any case),
// the values of repeated fields joined with ", " ("; " for Cookie, RFC
// 6265 section 5.4); "" when the request has none. It scans the request's
// header, so it is for the rare field the parser does not keep (a
// session cookie for a backend hook), not for every request.
func (r *Request) Field(name string) string {
	var out []byte
	sep := ", "
	if strings.EqualFold(name, "cookie") {
		sep = "; "
	}
	_, rest := nextLine(r.raw)
	for {
		var line []byte
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !strings.EqualFold(string(line[:colon]), name) {
			continue
		}
		v := trimOWS(line[colon+1:])
		if len(out) > 0 && len(v) > 0 {
			out = append(out, sep...)
		}
		out = append(out, v...)
	}
	return string(out)
}
