package hub

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestList: pages of channels sorted by name, by prefix, after a cursor,
// leaving out what Skip says, with "more" exactly when a page is cut.
func TestList(t *testing.T) {
	h := New(Config{})
	var all []string
	for i := range 50 {
		for _, p := range []string{"news:", "user:"} {
			name := fmt.Sprintf("%s%02d", p, i)
			if _, err := h.Publish(name, []byte(`1`)); err != nil {
				t.Fatal(err)
			}
			all = append(all, name)
		}
	}
	slices.Sort(all)
	names := func(cs []ChannelInfo) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	noUsers := func(n string) bool { return strings.HasPrefix(n, "user:") }
	cases := []struct {
		name string
		o    ListOptions
		want []string
		more bool
	}{
		{"first page", ListOptions{Limit: 3}, all[:3], true},
		{"everything", ListOptions{Limit: 1000}, all, false},
		{"exactly all", ListOptions{Limit: 100}, all, false},
		{"after a cursor", ListOptions{Limit: 2, After: all[10]}, all[11:13], true},
		{"last page", ListOptions{Limit: 5, After: all[97]}, all[98:], false},
		{"prefix", ListOptions{Limit: 2, Prefix: "user:4"}, []string{"user:40", "user:41"}, true},
		{"skip", ListOptions{Limit: 60, Skip: noUsers}, all[:50], false},
		{"no match", ListOptions{Limit: 5, Prefix: "nope"}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, more := h.List(tc.o)
			if !slices.Equal(names(got), tc.want) || more != tc.more {
				t.Errorf("List(%+v) = %v, more %v; want %v, more %v", tc.o, names(got), more, tc.want, tc.more)
			}
		})
	}
}
