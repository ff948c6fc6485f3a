package broker

import "strings"

// escaped reports whether channel byte c must be escaped in a subject
// token: '.', '*' and '>' are NATS's token separator and wildcards, and
// '%' is the escape itself. Channel names hold only 0x21 to 0x7E.
func escaped(c byte) bool { return c == '.' || c == '*' || c == '>' || c == '%' }

// subjectFor returns the subject of channel under prefix: prefix, a dot,
// then the channel as one token, with '.', '*', '>' and '%' written as %XX
// (so "chat.room-1" is "herald.ch.chat%2Eroom-1"): readable in NATS tools,
// and never a wildcard.
func subjectFor(prefix, channel string) string {
	var b strings.Builder
	b.Grow(len(prefix) + 1 + len(channel) + 8)
	b.WriteString(prefix)
	b.WriteByte('.')
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(channel); i++ {
		c := channel[i]
		if escaped(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
