package memberset

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// recorder is Events and Roster in one: it writes down every change the
// Set tells, in order.
type recorder struct {
	log chan string
}

func newRecorder() *recorder { return &recorder{log: make(chan string, 100)} }

type set = Set[string, string, int]
type channel = Channel[string, string, int]

func (r *recorder) Added(c *channel, m *Member[string], info []byte) {
	m.Data = string(info)
	c.Data++
	r.log <- fmt.Sprintf("added %s %s %s subs=%d", c.Key(), m.User(), info, c.NumSubscribers())
}

func (r *recorder) Removed(c *channel, m *Member[string], by Leave) {
	r.log <- fmt.Sprintf("removed %s %s node=%d down=%v", c.Key(), m.User(), by.Node, by.Down)
}

func (r *recorder) Put(ch, user string, info []byte) {
	r.log <- fmt.Sprintf("put %s %s %s", ch, user, info)
}

func (r *recorder) Remove(ch, user string) { r.log <- fmt.Sprintf("remove %s %s", ch, user) }

// expect reads the next changes and compares them with want.
func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-r.log:
			if got != w {
				t.Fatalf("got %q, want %q", got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("nothing, want %q", w)
		}
	}
}

// quiet checks that nothing more was told.
func (r *recorder) quiet(t *testing.T) {
	t.Helper()
	select {
	case got := <-r.log:
		t.Fatalf("unexpected %q", got)
	default:
	}
}

func newSet(delay time.Duration) (*set, *recorder) {
	r := newRecorder()
	return New(Config{LeaveDelay: delay, Roster: r}, Events[string, string, int](r)), r
}

// users is the channel's member list as Users gives it.
func users(s *set, ch string) []string { return s.Users(ch) }

// One member per user however many connections; the roster hears of the
// first and the last; a subscriber without a user is no member; a
// resubscription changes nothing.
func TestSetTabs(t *testing.T) {
	s, r := newSet(-1)
	if added, err := s.Join("room", "tab1", "alice", []byte("a"), 0, nil); !added || err != nil {
		t.Fatalf("first join: %v %v", added, err)
	}
	r.expect(t, "added room alice a subs=0", "put room alice a")
	if added, _ := s.Join("room", "tab2", "alice", []byte("a"), 0, nil); added {
		t.Fatal("second tab added")
	}
	if added, _ := s.Join("room", "tab2", "alice", []byte("a"), 0, nil); added {
		t.Fatal("resubscription added")
	}
	s.Join("room", "anon", "", nil, 0, nil)
	r.quiet(t)
	var conns, subs, data int
	s.View("room", func(c *channel) { conns, subs, data = c.Member("alice").Conns(), c.NumSubscribers(), c.Data })
	if conns != 2 || subs != 3 || data != 1 {
		t.Fatalf("conns %d subs %d data %d, want 2 3 1", conns, subs, data)
	}
	if u, ok := s.UserOf("room", "anon"); !ok || u != "" {
		t.Fatalf("anon: %q %v", u, ok)
	}
	s.Leave("room", "tab1")
	s.Leave("room", "anon")
	s.Leave("room", "nobody")
	r.quiet(t)
	s.Leave("room", "tab2")
	r.expect(t, "remove room alice", "removed room alice node=0 down=false")
	if s.View("room", func(*channel) {}) {
		t.Fatal("empty channel kept")
	}
}

// A member back within the leave delay never left; one that stays away
// leaves once it passed.
func TestSetLeaveDelay(t *testing.T) {
	s, r := newSet(20 * time.Millisecond)
	s.Join("room", "c1", "alice", nil, 0, nil)
	s.Join("room", "c2", "bob", nil, 0, nil)
	r.expect(t, "added room alice  subs=0", "put room alice ", "added room bob  subs=1", "put room bob ")
	s.Leave("room", "c1")
	r.expect(t, "remove room alice")
	away := false
	s.View("room", func(c *channel) { away = c.Member("alice").Away() })
	if !away {
		t.Fatal("alice not away")
	}
	s.Join("room", "c3", "alice", nil, 0, nil) // the reload
	r.expect(t, "put room alice ")
	s.Leave("room", "c2")
	// The next removal is bob's: alice's reload was no leave.
	r.expect(t, "remove room bob", "removed room bob node=0 down=false")
	if got := users(s, "room"); !reflect.DeepEqual(got, []string{"alice"}) {
		t.Fatalf("users %v", got)
	}
}

// Other nodes' entries: a user both here and there is one member; it
// leaves when neither has it, by the last node's leave; entries of
// unknown members or nodes change nothing.
func TestSetRemote(t *testing.T) {
	s, r := newSet(-1)
	s.Remote(Entry{Node: 2, Channel: "room", User: "remy", Info: []byte("r")})
	r.expect(t, "added room remy r subs=0")
	s.Join("room", "tab", "remy", []byte("x"), 0, nil)
	r.expect(t, "put room remy x")
	s.Remote(Entry{Node: 3, Channel: "room", User: "remy"})
	s.Remote(Entry{Node: 2, Channel: "room", User: "remy", Gone: true})
	s.Remote(Entry{Node: 2, Channel: "room", User: "remy", Gone: true})
	s.Remote(Entry{Node: 2, Channel: "room", User: "nobody", Gone: true})
	s.Remote(Entry{Node: 2, Channel: "other", User: "remy", Gone: true})
	s.Remote(Entry{Node: 2, Channel: "room"}) // no user: not a member's
	s.Leave("room", "tab")
	r.expect(t, "remove room remy")
	r.quiet(t) // node 3 still has it
	s.Remote(Entry{Node: 3, Channel: "room", User: "remy", Gone: true, NodeDown: true})
	r.expect(t, "removed room remy node=3 down=true")
	if n := s.Count("room"); n != 0 {
		t.Fatalf("count %d", n)
	}
}

// The member cap refuses new users only, changes nothing when it does,
// and does not hold back other nodes' members.
func TestSetLimit(t *testing.T) {
	s, r := newSet(-1)
	for _, u := range []string{"a", "b"} {
		if _, err := s.Join("room", "c-"+u, u, nil, 2, nil); err != nil {
			t.Fatal(err)
		}
	}
	r.expect(t, "added room a  subs=0", "put room a ", "added room b  subs=1", "put room b ")
	viewed := false
	if _, err := s.Join("room", "c-c", "c", nil, 2, func(*channel) { viewed = true }); !errors.Is(err, ErrFull) || viewed {
		t.Fatalf("past the cap: %v, view ran %v", err, viewed)
	}
	if _, err := s.Join("room", "c-a2", "a", nil, 2, nil); err != nil {
		t.Fatalf("a second tab refused: %v", err)
	}
	if _, err := s.Join("room", "anon", "", nil, 2, nil); err != nil {
		t.Fatalf("an anonymous subscriber refused: %v", err)
	}
	if _, ok := s.UserOf("room", "c-c"); ok {
		t.Fatal("the refused join is a subscriber")
	}
	r.quiet(t)
	s.Remote(Entry{Node: 2, Channel: "room", User: "remy"})
	r.expect(t, "added room remy  subs=4")
	if n := s.Count("room"); n != 3 {
		t.Fatalf("count %d, want 3", n)
	}
	// A refusal on a new channel leaves nothing behind.
	if _, err := s.Join("empty", "x", "x", nil, -1, nil); err != nil {
		t.Fatalf("no cap: %v", err)
	}
	r.expect(t, "added empty x  subs=0", "put empty x ")
}

// A leave swaps the last member into the leaver's place; the list stays
// every member once.
func TestSetOrder(t *testing.T) {
	s, _ := newSet(-1)
	for _, u := range []string{"a", "b", "c", "d"} {
		s.Join("room", u, u, nil, 0, nil)
	}
	s.Leave("room", "b")
	if got := users(s, "room"); !reflect.DeepEqual(got, []string{"a", "d", "c"}) {
		t.Fatalf("users %v", got)
	}
	var list []string
	s.Join("room", "e", "e", nil, 0, func(c *channel) {
		for _, m := range c.Members() {
			list = append(list, m.User())
		}
	})
	if !reflect.DeepEqual(list, []string{"a", "d", "c", "e"}) {
		t.Fatalf("view %v", list)
	}
}
