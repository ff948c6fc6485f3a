package pusher

import (
	"strings"
	"sync"
	"time"

	"github.com/herald-push/herald/pusher/webhook"
)

// occupancy counts each channel's subscriptions, this node's and, with a
// Roster, the other nodes', for the HTTP API's channel queries and the
// channel_occupied / channel_vacated webhooks, which it posts once per
// cluster: channel_occupied by the node whose subscription made the
// channel occupied, channel_vacated by the node whose unsubscription
// left it empty (the first live node for a node that died), once the
// vacate delay passed with nobody subscribing anywhere. Kept only when
// there is a Roster or a webhook; nil otherwise (the hub counts).
type occupancy struct {
	p     *Protocol
	delay time.Duration // VacateDelay; negative: none

	mu    sync.Mutex
	chans map[string]*occupied // by hub name
}

// occupied is one channel's subscriptions; vacating while the vacate
// delay runs (gen names that wait).
type occupied struct {
	app      *App
	ch       string
	local    int
	remote   map[uint32]int // other nodes' subscriptions
	vacating bool
	gen      uint64
	last     uint32 // the node whose leave emptied it (0: this one)
	down     bool   // that node stopped
}

func (o *occupied) total() int {
	n := o.local
	for _, c := range o.remote {
		n += c
	}
	return n
}

// newOccupancy returns the occupancy registry, nil when nothing needs it.
func newOccupancy(p *Protocol, delay time.Duration) *occupancy {
	if p.o.Roster == nil && p.hooks == nil {
		return nil
	}
	if delay == 0 {
		delay = DefaultVacateDelay
	}
	return &occupancy{p: p, delay: delay, chans: map[string]*occupied{}}
}

// channelLocked is name's record, made when new. Lock held.
func (oc *occupancy) channelLocked(name string, a *App, ch string) *occupied {
	o := oc.chans[name]
	if o == nil {
		o = &occupied{app: a, ch: ch}
		oc.chans[name] = o
	}
	return o
}

// subscribed counts a subscription of this node to ch.
func (oc *occupancy) subscribed(a *App, ch string) {
	if oc == nil {
		return
	}
	name := hubName(a, ch)
	oc.mu.Lock()
	defer oc.mu.Unlock()
	o := oc.channelLocked(name, a, ch)
	empty := o.total() == 0
	o.local++
	if r := oc.p.o.Roster; r != nil {
		r.SetSubscriptions(name, o.local)
	}
	if !empty {
		return
	}
	if o.vacating {
		o.vacating = false // back within the delay: no vacated, no occupied
		o.gen++
		return
	}
	oc.p.hooks.channel(a, ch, webhook.ChannelOccupied)
}

// unsubscribed counts a subscription's end.
func (oc *occupancy) unsubscribed(a *App, ch string) {
	if oc == nil {
		return
	}
	name := hubName(a, ch)
	oc.mu.Lock()
	defer oc.mu.Unlock()
	o := oc.chans[name]
	if o == nil || o.local == 0 {
		return
	}
	o.local--
	if r := oc.p.o.Roster; r != nil {
		r.SetSubscriptions(name, o.local)
	}
	if o.total() == 0 {
		oc.vacateLocked(name, o, 0, false)
	}
}

// remote applies another node's count.
func (oc *occupancy) remote(e RemoteEntry) {
	if oc == nil {
		return
	}
	appID, ch, ok := strings.Cut(e.Channel, ":")
	a := oc.p.byID[appID]
	if !ok || a == nil {
		return
	}
	oc.mu.Lock()
	defer oc.mu.Unlock()
	o := oc.chans[e.Channel]
	if o == nil {
		if e.Gone || e.Subscriptions <= 0 {
			return
		}
		o = oc.channelLocked(e.Channel, a, ch)
	}
	before := o.total()
	if e.Gone || e.Subscriptions <= 0 {
		delete(o.remote, e.Node)
	} else {
		if o.remote == nil {
			o.remote = map[uint32]int{}
		}
		o.remote[e.Node] = e.Subscriptions
	}
	after := o.total()
	switch {
	case before == 0 && after > 0 && o.vacating:
		o.vacating = false
		o.gen++
	case before > 0 && after == 0:
		oc.vacateLocked(e.Channel, o, e.Node, e.NodeDown)
	case after == 0 && !o.vacating:
		delete(oc.chans, e.Channel)
	}
}

// vacateLocked starts the channel's vacate delay; node is the node whose
// leave emptied it (0: this one). Lock held.
func (oc *occupancy) vacateLocked(name string, o *occupied, node uint32, down bool) {
	o.vacating, o.last, o.down = true, node, down
	o.gen++
	if oc.delay < 0 {
		oc.vacatedLocked(name, o)
		return
	}
	gen := o.gen
	time.AfterFunc(oc.delay, func() {
		oc.mu.Lock()
		defer oc.mu.Unlock()
		if oc.chans[name] == o && o.vacating && o.gen == gen && o.total() == 0 {
			oc.vacatedLocked(name, o)
		}
	})
}

// vacatedLocked forgets the empty channel and posts channel_vacated if
// this node is the one to. Lock held.
func (oc *occupancy) vacatedLocked(name string, o *occupied) {
	delete(oc.chans, name)
	if o.last == 0 || (o.down && oc.p.o.Roster != nil && oc.p.o.Roster.First()) {
		oc.p.hooks.channel(o.app, o.ch, webhook.ChannelVacated)
	}
}

// count returns a channel's subscriptions in the cluster; ok false
// without the registry (the hub counts).
func (oc *occupancy) count(name string) (int, bool) {
	if oc == nil || oc.p.o.Roster == nil {
		return 0, false
	}
	oc.mu.Lock()
	defer oc.mu.Unlock()
	if o := oc.chans[name]; o != nil {
		return o.total(), true
	}
	return 0, true
}

// list returns every occupied channel of app a whose name starts with
// prefix, and its subscriptions in the cluster.
func (oc *occupancy) list(a *App, prefix string) map[string]int {
	pre := hubName(a, prefix)
	out := map[string]int{}
	oc.mu.Lock()
	defer oc.mu.Unlock()
	for name, o := range oc.chans {
		if n := o.total(); n > 0 && o.app == a && strings.HasPrefix(name, pre) {
			out[o.ch] = n
		}
	}
	return out
}
