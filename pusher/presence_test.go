package pusher

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/pusher/webhook"
	"github.com/herald-push/herald/server"
)

// until reads frames until one of event.
func (c *client) until(event string) map[string]any {
	c.t.Helper()
	for {
		if m := c.next(); m["event"] == event {
			return m
		}
	}
}

// members decodes a subscription_succeeded's presence data: ids sorted,
// the hash and the count.
func members(t *testing.T, d map[string]any) ([]string, map[string]any, int) {
	t.Helper()
	p := d["presence"].(map[string]any)
	var ids []string
	for _, id := range p["ids"].([]any) {
		ids = append(ids, id.(string))
	}
	sort.Strings(ids)
	return ids, p["hash"].(map[string]any), int(p["count"].(float64))
}

func TestPresenceMemberCap(t *testing.T) {
	n := start(t, func(o *Options, _ *server.Config) { o.Apps[0].MaxPresenceMembers = 3 })
	const ch = "presence-room"
	var cs []*client
	for i := range 3 {
		c := n.connect(t)
		c.subscribed(ch, fmt.Sprintf(`{"user_id":"u%d"}`, i))
		cs = append(cs, c)
	}
	// A second connection of a member is no new member.
	again := n.connect(t)
	if _, _, count := members(t, again.subscribed(ch, `{"user_id":"u0"}`)); count != 3 {
		t.Fatalf("count %d, want 3", count)
	}
	late := n.connect(t)
	late.subscribe(ch, `{"user_id":"u3"}`)
	m := late.expect(`{"event":"pusher:subscription_error","channel":"presence-room"}`)
	d := m["data"].(map[string]any)
	if d["type"] != "LimitReached" || d["status"] != float64(4100) {
		t.Fatalf("refusal %v", m)
	}
	late.ping() // refused, not closed
	if st := n.p.Stats(); st.PresenceMembersLimited != 1 {
		t.Fatalf("PresenceMembersLimited %d, want 1", st.PresenceMembersLimited)
	}
	if users, _ := n.p.Users(testApp.ID, ch); len(users) != 3 {
		t.Fatalf("users %v", users)
	}
	// Once a member leaves, the next join is taken and sees the list
	// rebuilt without it.
	cs[1].send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": ch}})
	cs[0].until("pusher_internal:member_removed")
	ids, hash, count := members(t, late.subscribed(ch, `{"user_id":"u3","user_info":{"n":3}}`))
	if !reflect.DeepEqual(ids, []string{"u0", "u2", "u3"}) || count != 3 || !reflect.DeepEqual(hash["u3"], map[string]any{"n": float64(3)}) || hash["u0"] != nil {
		t.Fatalf("ids %v hash %v count %d", ids, hash, count)
	}
}

func TestPresenceUserInfoCap(t *testing.T) {
	n := start(t, nil)
	const ch = "presence-big"
	c := n.connect(t)
	refused := func(channelData string) {
		t.Helper()
		c.subscribe(ch, channelData)
		m := c.expect(`{"event":"pusher:subscription_error","channel":"presence-big"}`)
		if d := m["data"].(map[string]any); d["type"] != "LimitReached" {
			t.Fatalf("refusal %v", m)
		}
	}
	info := func(n int) string { return `"` + strings.Repeat("x", n-2) + `"` }
	refused(`{"user_id":"a","user_info":` + info(MaxUserInfo+1) + `}`)
	refused(`{"user_id":"` + strings.Repeat("i", MaxUserID+1) + `"}`)
	c.ping()
	ids, hash, _ := members(t, c.subscribed(ch, `{"user_id":"`+strings.Repeat("i", MaxUserID)+`","user_info":`+info(MaxUserInfo)+`}`))
	if len(ids) != 1 || hash[ids[0]] != strings.Repeat("x", MaxUserInfo-2) {
		t.Fatalf("ids %v", ids)
	}
	if st := n.p.Stats(); st.UserInfoLimited != 2 {
		t.Fatalf("UserInfoLimited %d, want 2", st.UserInfoLimited)
	}
}

// The encoded list keeps characters JSON escapes (twice, in the data
// string) intact, as members join and leave.
func TestPresenceListEncoding(t *testing.T) {
	n := start(t, nil)
	const ch = "presence-esc"
	want := map[string]any{}
	var cs []*client
	for i, id := range []string{`q"uote`, `back\slash`, "<tag>&", "line\u2028sep", "ctl\x01", "é"} {
		info := map[string]any{"s": id + `"\` + "\u2029<>", "i": float64(i)}
		cd, _ := json.Marshal(map[string]any{"user_id": id, "user_info": info})
		c := n.connect(t)
		_, hash, count := members(t, c.subscribed(ch, string(cd)))
		want[id] = info
		if count != len(want) || !reflect.DeepEqual(hash, want) {
			t.Fatalf("join %d: hash %v, want %v", i, hash, want)
		}
		cs = append(cs, c)
	}
	cs[2].send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": ch}})
	cs[0].until("pusher_internal:member_removed")
	delete(want, "<tag>&")
	c := n.connect(t)
	want["z"] = nil
	if _, hash, count := members(t, c.subscribed(ch, `{"user_id":"z"}`)); count != len(want) || !reflect.DeepEqual(hash, want) {
		t.Fatalf("after a leave: hash %v, want %v", hash, want)
	}
}

// A member list past the output budget closes with 4100, a Pusher code,
// not 1008.
func TestPresenceBudgetCloseCode(t *testing.T) {
	n := start(t, func(_ *Options, c *server.Config) { c.WriteBufferLimit = 2048 })
	const ch = "presence-full"
	info := `"` + strings.Repeat("x", 900) + `"`
	for i := range 2 {
		n.connect(t).subscribed(ch, fmt.Sprintf(`{"user_id":"u%d","user_info":%s}`, i, info))
	}
	c := n.connect(t)
	c.subscribe(ch, `{"user_id":"u2","user_info":`+info+`}`)
	c.expectClose(CodeOverCapacity)
	if st := n.p.Stats(); st.BudgetClosed != 1 {
		t.Fatalf("BudgetClosed %d", st.BudgetClosed)
	}
}

func TestCheckBudget(t *testing.T) {
	apps := []App{testApp}
	if err := CheckBudget(apps, server.DefaultWriteBufferLimit); err != nil {
		t.Fatalf("default settings refused: %v", err)
	}
	if err := CheckBudget(apps, 64<<10); err == nil || !strings.Contains(err.Error(), "max_presence_members") {
		t.Fatalf("64 KiB budget for 100 members: %v", err)
	}
	apps[0].MaxPresenceMembers = 10
	if err := CheckBudget(apps, 64<<10); err != nil {
		t.Fatalf("10 members in 64 KiB: %v", err)
	}
	apps[0].MaxPresenceMembers = -1
	if err := CheckBudget(apps, 64<<10); err == nil {
		t.Fatal("negative cap taken")
	}
	// The bound holds for the worst member the caps let in.
	m := newMember(strings.Repeat("\x01", MaxUserID), json.RawMessage(`"`+strings.Repeat(`\"`, (MaxUserInfo-2)/2)+`"`))
	if got := 2*(len(m.idEnc)+1) + len(m.entry) + 1; got > maxMemberBytes {
		t.Fatalf("worst member takes %d bytes, bound %d", got, maxMemberBytes)
	}
}

// Sockets of one user joining and leaving a presence channel at the same
// moment, on two loops: each round is one member and one occupancy, so
// exactly one member_added, member_removed, channel_occupied and
// channel_vacated each (the member set decides a user's first join and
// last leave under one lock).
func TestPresenceSameUserAtOnce(t *testing.T) {
	r := newHookReceiver(t, nil)
	n := start(t, func(o *Options, c *server.Config) {
		withHooks(r, -1, func(o *Options) { o.LeaveDelay = -1 })(o, c)
		o.CommandRate = -1
		c.Loops = 2
	})
	var cs []*client
	for range 6 {
		cs = append(cs, n.connect(t))
	}
	const rounds = 20
	const ch = "presence-once"
	for range rounds {
		for _, c := range cs {
			c.subscribe(ch, `{"user_id":"u"}`)
		}
		for _, c := range cs {
			c.until("pusher_internal:subscription_succeeded")
		}
		for _, c := range cs {
			c.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": ch}})
		}
		for _, c := range cs {
			c.ping()
		}
	}
	// A client event closes the story: the webhooks go out in order, so
	// every one posted before it has arrived with it.
	end := cs[0]
	end.subscribed("private-end", "")
	end.send(map[string]any{"event": "client-end", "channel": "private-end", "data": "x"})
	got := map[webhook.Event]int{}
	for {
		select {
		case e := <-r.events:
			if e.Name == webhook.ClientEvent {
				for _, name := range []string{webhook.MemberAdded, webhook.MemberRemoved} {
					if k := got[webhook.Event{Name: name, Channel: ch, UserID: "u"}]; k != rounds {
						t.Errorf("%s posted %d times, want %d", name, k, rounds)
					}
				}
				for _, name := range []string{webhook.ChannelOccupied, webhook.ChannelVacated} {
					if k := got[webhook.Event{Name: name, Channel: ch}]; k != rounds {
						t.Errorf("%s posted %d times, want %d", name, k, rounds)
					}
				}
				return
			}
			got[e]++
		case <-time.After(testTimeout):
			t.Fatalf("no client_event webhook; got %v", got)
		}
	}
}
