package push

import (
	"encoding/json"
	"testing"

	"github.com/herald-push/herald/hub"
)

// FuzzParseCommand feeds arbitrary client messages to the command parser:
// it must never panic, and what it accepts must survive a round trip
// through JSON unchanged (nothing half-parsed reaches the dispatcher). The
// seeds run in every plain go test.
func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		`{"op":"sub","channel":"news"}`,
		`{"op":"sub","channel":"news","since":{"offset":3,"epoch":"abc"},"id":1}`,
		`{"op":"unsub","channel":"news"}`,
		`{"op":"pub","channel":"demo:x","data":{"a":1}}`,
		`{"op":"pub","channel":"demo:x","data":"\u0000"}`,
		`{"op":"ping","id":"x"}`,
		`{"op":"msg","data":[1,2]}`,
		`{"op":"nope"}`,
		`{}`, `[]`, `null`, `"op"`, `{"op":`, ``, "\xff\xfe",
		`{"op":"sub","channel":"a"}{"op":"sub","channel":"b"}`,
		`{"op":"sub","since":{"offset":-1}}`,
		`{"op":"sub","since":{"offset":18446744073709551616}}`,
		`{"op":"pub","data":` + string(make([]byte, 100)) + `}`,
		`{"op":1}`, `{"OP":"ping"}`, `{"op":"ping","op":"sub"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		cmd, err := parseCommand(payload)
		if err != nil {
			if cmd.Op != "" || cmd.Channel != "" || cmd.Since != nil || cmd.Data != nil || cmd.ID != nil {
				t.Fatalf("error %v, yet a command: %+v", err, cmd)
			}
			return
		}
		if cmd.Data != nil && !json.Valid(cmd.Data) {
			t.Fatalf("data %q is not JSON", cmd.Data)
		}
		if cmd.ID != nil && !json.Valid(cmd.ID) {
			t.Fatalf("id %q is not JSON", cmd.ID)
		}
		b, err := json.Marshal(cmd)
		if err != nil {
			t.Fatalf("marshal %+v: %v", cmd, err)
		}
		again, err := parseCommand(b)
		if err != nil {
			t.Fatalf("re-parse %s: %v", b, err)
		}
		if again.Op != cmd.Op || again.Channel != cmd.Channel || (again.Since == nil) != (cmd.Since == nil) ||
			(cmd.Since != nil && *again.Since != *cmd.Since) {
			t.Fatalf("round trip %+v → %+v", cmd, again)
		}
		_ = hub.ValidChannel(cmd.Channel)
	})
}
