package push

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/herald-push/herald/hub"
)

// TestAppendSubscribed: the subscribed reply built by hand reads as the
// one encoding/json builds, escapes included.
func TestAppendSubscribed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ch           string
		pos          hub.Position
		withRec, rec bool
	}{
		{"news", hub.Position{Offset: 42, Epoch: "x9f"}, true, true},
		{`a"b\c<&>`, hub.Position{Offset: 0, Epoch: "abcdefgh"}, false, false},
		{"user:alice", hub.Position{Offset: 1<<64 - 1, Epoch: "e\"\x01"}, true, false},
	} {
		got := appendSubscribed(nil, tc.ch, tc.pos, tc.withRec, tc.rec)
		r := map[string]any{"op": "subscribed", "channel": tc.ch, "offset": tc.pos.Offset, "epoch": tc.pos.Epoch}
		if tc.withRec {
			r["recovered"] = tc.rec
		}
		want, _ := json.Marshal(r)
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		dec := json.NewDecoder(bytes.NewReader(want))
		dec.UseNumber()
		_ = dec.Decode(&w)
		dec = json.NewDecoder(bytes.NewReader(got))
		dec.UseNumber()
		_ = dec.Decode(&g)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}
