package broker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of RosterConfig's zero fields.
const (
	DefaultRosterBucket = "HERALD_PUSHER_PRESENCE"
	DefaultHeartbeat    = time.Second
	DefaultNodeTimeout  = 5 * time.Second
)

// ErrNodeTaken is NewRoster's answer when another node holds the node
// number asked for (draw another).
var ErrNodeTaken = errors.New("broker: roster: node number taken")

// RosterConfig configures a Roster. The zero value (with a URL and a
// Node) is valid.
type RosterConfig struct {
	// URL is the NATS server (as NATSConfig.URL), Name the connection's
	// name in NATS monitoring.
	URL, Name string
	// Optional starts the roster even when NATS is unreachable; it
	// connects when NATS appears (Ready says why not meanwhile).
	Optional bool
	// Bucket is the JetStream key-value bucket (default
	// HERALD_PUSHER_PRESENCE), created when missing with Replicas.
	Bucket   string
	Replicas int
	// Node is this node's number (not 0), unique among the live nodes:
	// NewRoster claims it in the bucket and fails with ErrNodeTaken when
	// a live node holds it.
	Node uint32
	// Heartbeat is how often the node writes its heartbeat (default 1 s);
	// NodeTimeout how long another node's heartbeat may stay silent
	// before its entries are taken for gone (default 5 s).
	Heartbeat, NodeTimeout time.Duration
	// Log receives connection events (default slog.Default()).
	Log *slog.Logger
}

// RosterEntry is one node's entry in the roster: the node has Channel's
// member User (with Info), or no longer has it (Gone). An entry without
// a User is the node's occupancy of Channel: Subscriptions, its number of
// subscriptions there (Gone: none any more).
type RosterEntry struct {
	Node          uint32
	Channel       string
	User          string
	Info          []byte
	Subscriptions int
	// Gone: the entry was removed, by its node or because its node
	// stopped (NodeDown: its heartbeat was silent past NodeTimeout, or
	// it shut down).
	Gone, NodeDown bool
}

// Roster is the cluster's shared presence state: every node writes its
// own entries (a channel's member it has) into a JetStream key-value
// bucket, with a heartbeat, and watches everyone's. Keys are
// m.{node}.{channel}.{user} (channel and user in unpadded base64url),
// o.{node}.{channel}, the node's number of subscriptions to the channel,
// and n.{node}, the heartbeat. A node whose heartbeat is silent for
// NodeTimeout is taken for dead (unless this node is cut off from NATS
// itself): its entries are reported gone, and the live node with the
// smallest number purges its keys. A node that finds
// its own entry removed by another writes it again. Writes never block
// the caller: Put and Remove queue the key (the latest state of a key is
// written, once), one goroutine writes. Safe for concurrent use.
type Roster struct {
	cfg    RosterConfig
	nc     *nats.Conn
	js     jetstream.JetStream
	ctx    context.Context
	cancel context.CancelFunc
	kv     atomic.Pointer[jetstream.KeyValue]
	synced atomic.Bool
	why    atomic.Pointer[string]
	openMu sync.Mutex  // serialises open
	marker atomic.Bool // the bucket keeps purge markers for a while only
	// watcher is the live watch; hearing whether it has caught up with
	// the bucket since the last (re)connection: until then the others'
	// silence is not counted.
	watcher atomic.Pointer[jetstream.KeyWatcher]
	hearing atomic.Bool

	started  chan struct{}
	onChange func(RosterEntry)

	mu    sync.Mutex
	local map[string][]byte // this node's entries: key → info
	pend  map[string]bool   // keys to write
	order []string          // pend in order
	wake  chan struct{}
	nodes map[uint32]*rosterNode
	// cutOff: this node lost NATS; the others' silence is not counted.
	cutOff bool

	writes, remote atomic.Uint64
}

// rosterNode is what the roster knows of another node.
type rosterNode struct {
	last    time.Time // when its heartbeat (or first entry) was seen
	dead    bool
	entries map[string]RosterEntry
}

// NewRoster connects to NATS, makes sure the bucket exists and claims
// cfg.Node. Start begins the work.
func NewRoster(ctx context.Context, cfg RosterConfig) (*Roster, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultRosterBucket
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = DefaultNodeTimeout
	}
	cfg.NodeTimeout = max(cfg.NodeTimeout, 2*cfg.Heartbeat)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Node == 0 {
		return nil, errors.New("broker: roster: no node number")
	}
	r := &Roster{cfg: cfg, local: map[string][]byte{}, pend: map[string]bool{}, wake: make(chan struct{}, 1),
		nodes: map[uint32]*rosterNode{}, started: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	why := "connecting to " + cfg.URL
	r.why.Store(&why)
	nc, err := nats.Connect(cfg.URL,
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.Timeout(2*time.Second),
		nats.RetryOnFailedConnect(cfg.Optional),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { r.hearing.Store(false) }),
		nats.ReconnectHandler(func(*nats.Conn) {
			// The server may have lost our watcher's consumer (a
			// restart): watch again rather than wait for it to notice,
			// and write everything again.
			r.hearing.Store(false)
			if w := r.watcher.Load(); w != nil {
				_ = (*w).Stop()
			}
			r.rewrite()
		}),
	)
	if err != nil {
		r.cancel()
		return nil, fmt.Errorf("broker: roster: connect to NATS at %s: %w", cfg.URL, err)
	}
	r.nc = nc
	if r.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		r.cancel()
		return nil, fmt.Errorf("broker: roster: jetstream: %w", err)
	}
	if nc.IsConnected() {
		if err := initRetry(ctx, r.open); err != nil {
			nc.Close()
			r.cancel()
			return nil, err
		}
	}
	return r, nil
}

// open finds or creates the bucket and claims the node number, once.
func (r *Roster) open(ctx context.Context) error {
	r.openMu.Lock()
	defer r.openMu.Unlock()
	if r.kv.Load() != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	kv, err := r.js.KeyValue(ctx, r.cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = r.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      r.cfg.Bucket,
			Description: "herald: Pusher presence, each node's members and heartbeat",
			Storage:     jetstream.FileStorage,
			Replicas:    r.cfg.Replicas,
			// Purge markers go after a minute, so churn leaves nothing.
			LimitMarkerTTL: time.Minute,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = r.js.KeyValue(ctx, r.cfg.Bucket)
		}
	}
	if err != nil {
		why := fmt.Sprintf("bucket %s: %v", r.cfg.Bucket, err)
		r.why.Store(&why)
		return fmt.Errorf("broker: roster: bucket %s: %w", r.cfg.Bucket, err)
	}
	if st, err := kv.Status(ctx); err == nil {
		r.marker.Store(st.LimitMarkerTTL() > 0)
	}
	if _, err := kv.Create(ctx, r.nodeKey(r.cfg.Node), r.beat()); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("%w: %d", ErrNodeTaken, r.cfg.Node)
		}
		return fmt.Errorf("broker: roster: claiming node %d: %w", r.cfg.Node, err)
	}
	r.kv.Store(&kv)
	return nil
}

// Start reports every other node's entries to onChange (on one
// goroutine, in the bucket's order) and begins writing this node's.
func (r *Roster) Start(onChange func(RosterEntry)) {
	r.onChange = onChange
	close(r.started)
	go r.write()
	go r.watch()
	go r.beatLoop()
}

// Ready reports whether the roster is connected and has read the
// bucket's state.
func (r *Roster) Ready() (bool, string) {
	switch {
	case r.ctx.Err() != nil:
		return false, "roster: closed"
	case !r.nc.IsConnected():
		return false, "roster: NATS disconnected (" + r.nc.Status().String() + ")"
	case r.kv.Load() == nil || !r.synced.Load():
		return false, "roster: " + *r.why.Load()
	}
	return true, ""
}

// RosterStats are the roster's counters.
type RosterStats struct {
	// Writes counts the keys written (or removed) in the bucket, Remote
	// the other nodes' changes applied.
	Writes uint64 `json:"writes"`
	Remote uint64 `json:"remote"`
	Nodes  int    `json:"nodes"`
}

// Stats returns the counters.
func (r *Roster) Stats() RosterStats {
	r.mu.Lock()
	n := 0
	for _, rn := range r.nodes {
		if !rn.dead {
			n++
		}
	}
	r.mu.Unlock()
	return RosterStats{Writes: r.writes.Load(), Remote: r.remote.Load(), Nodes: n + 1}
}

// First reports whether this node has the smallest number among the
// live nodes it knows: the one that acts for the nodes that died.
func (r *Roster) First() bool {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, rn := range r.nodes {
		if n < r.cfg.Node && !rn.dead && now.Sub(rn.last) <= r.cfg.NodeTimeout {
			return false
		}
	}
	return true
}

// terminateSubject carries the HTTP API's terminate_connections to every
// node (core NATS: it reaches the nodes connected now).
const terminateSubject = "herald.pusher.terminate"

// terminate is a terminate_connections request.
type terminate struct {
	App  string `json:"app"`
	User string `json:"user"`
}

// Terminate asks every node, this one included, to close the
// connections signed in as user of app (OnTerminate). It fails with
// ErrUnavailable while NATS is away.
func (r *Roster) Terminate(app, user string) error {
	if !r.nc.IsConnected() {
		return fmt.Errorf("%w: roster: NATS disconnected", ErrUnavailable)
	}
	b, err := json.Marshal(terminate{App: app, User: user})
	if err != nil {
		return fmt.Errorf("broker: roster: terminate: %w", err)
	}
	if err := r.nc.Publish(terminateSubject, b); err != nil {
		return fmt.Errorf("%w: roster: terminate: %w", ErrUnavailable, err)
	}
	if err := r.nc.FlushTimeout(2 * time.Second); err != nil {
		return fmt.Errorf("%w: roster: terminate: %w", ErrUnavailable, err)
	}
	return nil
}

// OnTerminate has fn run for every Terminate of any node, on the
// subscription's goroutine.
func (r *Roster) OnTerminate(fn func(app, user string)) error {
	_, err := r.nc.Subscribe(terminateSubject, func(m *nats.Msg) {
		var t terminate
		if json.Unmarshal(m.Data, &t) == nil && t.App != "" && t.User != "" {
			fn(t.App, t.User)
		}
	})
	if err != nil {
		return fmt.Errorf("broker: roster: subscribe to %s: %w", terminateSubject, err)
	}
	return nil
}

// Put records that this node has channel's member user, with info.
func (r *Roster) Put(channel, user string, info []byte) {
	if len(info) == 0 {
		info = []byte("null")
	}
	k := r.memberKey(r.cfg.Node, channel, user)
	r.mu.Lock()
	r.local[k] = append([]byte(nil), info...)
	r.queueLocked(k)
	r.mu.Unlock()
}

// SetSubscriptions records this node's number of subscriptions to
// channel (0: none, the key is removed). Bursts of changes are written as
// their latest state.
func (r *Roster) SetSubscriptions(channel string, n int) {
	k := "o." + strconv.FormatUint(uint64(r.cfg.Node), 10) + "." + keyEncoding.EncodeToString([]byte(channel))
	r.mu.Lock()
	if n > 0 {
		r.local[k] = []byte(strconv.Itoa(n))
	} else {
		delete(r.local, k)
	}
	r.queueLocked(k)
	r.mu.Unlock()
}

// Remove records that this node no longer has channel's member user.
func (r *Roster) Remove(channel, user string) {
	k := r.memberKey(r.cfg.Node, channel, user)
	r.mu.Lock()
	delete(r.local, k)
	r.queueLocked(k)
	r.mu.Unlock()
}

// queueLocked has k written. Lock held.
func (r *Roster) queueLocked(k string) {
	if !r.pend[k] {
		r.pend[k] = true
		r.order = append(r.order, k)
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// rewrite queues every entry of this node again (after NATS came back:
// it may have lost them, or others may have taken the node for dead).
func (r *Roster) rewrite() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.local {
		r.queueLocked(k)
	}
}

// write writes the queued keys, the latest state of each, until Close;
// a key that fails is retried.
func (r *Roster) write() {
	wait := 100 * time.Millisecond
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.wake:
		}
		for r.ctx.Err() == nil {
			r.mu.Lock()
			if len(r.order) == 0 {
				r.mu.Unlock()
				break
			}
			k := r.order[0]
			info, ok := r.local[k]
			r.mu.Unlock()
			if err := r.writeKey(k, info, ok); err != nil {
				r.cfg.Log.Debug("broker: roster write", "key", k, "err", err)
				select {
				case <-r.ctx.Done():
					return
				case <-time.After(wait):
				}
				wait = min(2*wait, 2*time.Second)
				continue
			}
			wait = 100 * time.Millisecond
			r.writes.Add(1)
			r.mu.Lock()
			r.order[0] = ""
			r.order = r.order[1:]
			delete(r.pend, k)
			if info2, ok2 := r.local[k]; ok2 != ok || string(info2) != string(info) {
				r.queueLocked(k) // changed while written
			}
			r.mu.Unlock()
		}
	}
}

// writeKey puts (ok) or removes key k.
func (r *Roster) writeKey(k string, info []byte, ok bool) error {
	kvp := r.kv.Load()
	if kvp == nil {
		if err := r.open(r.ctx); err != nil {
			return err
		}
		kvp = r.kv.Load()
	}
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	if ok {
		_, err := (*kvp).Put(ctx, k, info)
		return err
	}
	return r.remove(ctx, *kvp, k)
}

// remove purges k (its marker leaves the bucket after a minute), or
// deletes it where the bucket keeps no markers' age.
func (r *Roster) remove(ctx context.Context, kv jetstream.KeyValue, k string) error {
	if r.marker.Load() {
		return kv.Purge(ctx, k, jetstream.PurgeTTL(time.Minute))
	}
	return kv.Delete(ctx, k)
}

// beatLoop writes the heartbeat and takes silent nodes for dead.
func (r *Roster) beatLoop() {
	t := time.NewTicker(r.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		if kvp := r.kv.Load(); kvp != nil {
			ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Heartbeat)
			_, err := (*kvp).Put(ctx, r.nodeKey(r.cfg.Node), r.beat())
			cancel()
			if err != nil {
				r.cfg.Log.Debug("broker: roster heartbeat", "err", err)
			}
		} else if r.nc.IsConnected() {
			// Started without NATS: open the bucket now it is here.
			if err := r.open(r.ctx); err != nil {
				r.cfg.Log.Warn("broker: roster not available", "bucket", r.cfg.Bucket, "err", err)
			}
		}
		r.expire()
	}
}

// expire takes the nodes silent for NodeTimeout for dead, reports their
// entries gone, and purges their keys when this node is the live node
// with the smallest number.
func (r *Roster) expire() {
	now := time.Now()
	var gone []RosterEntry
	var purge []string
	r.mu.Lock()
	if !r.synced.Load() {
		r.mu.Unlock()
		return
	}
	if !r.nc.IsConnected() || !r.hearing.Load() {
		// Cut off ourselves: the others' silence says nothing of them.
		// Their time starts again once we hear the bucket again.
		r.cutOff = true
		r.mu.Unlock()
		return
	}
	if r.cutOff {
		r.cutOff = false
		for _, rn := range r.nodes {
			rn.last = now
		}
	}
	first := true
	for n, rn := range r.nodes {
		if !rn.dead && n < r.cfg.Node && now.Sub(rn.last) <= r.cfg.NodeTimeout {
			first = false
		}
	}
	for n, rn := range r.nodes {
		if rn.dead || now.Sub(rn.last) <= r.cfg.NodeTimeout {
			continue
		}
		rn.dead = true
		for _, e := range rn.entries {
			e.Gone, e.NodeDown, e.Info, e.Subscriptions = true, true, nil, 0
			gone = append(gone, e)
		}
		r.cfg.Log.Warn("broker: roster: a node's heartbeat is silent; its presence members are gone", "node", n, "members", len(rn.entries))
		if first {
			for k := range rn.entries {
				purge = append(purge, k)
			}
			purge = append(purge, r.nodeKey(n))
		}
	}
	r.mu.Unlock()
	for _, e := range gone {
		r.onChange(e)
	}
	if kvp := r.kv.Load(); kvp != nil && len(purge) > 0 {
		ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		defer cancel()
		for _, k := range purge {
			if err := r.remove(ctx, *kvp, k); err != nil {
				r.cfg.Log.Debug("broker: roster purge", "key", k, "err", err)
			}
		}
	}
}

// watch follows the bucket, from its current state on, restarting the
// watcher when it ends before Close.
func (r *Roster) watch() {
	for wait := 100 * time.Millisecond; r.ctx.Err() == nil; wait = min(2*wait, 5*time.Second) {
		kvp := r.kv.Load()
		if kvp == nil {
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		w, err := (*kvp).WatchAll(r.ctx)
		if err != nil {
			why := "watch: " + err.Error()
			r.why.Store(&why)
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		wait = 100 * time.Millisecond
		r.watcher.Store(&w)
		r.follow(w)
		_ = w.Stop()
	}
}

// follow applies a watcher's updates until it ends. A restarted watcher
// replays the bucket's state: entries the old one reported and the new
// one does not are gone.
func (r *Roster) follow(w jetstream.KeyWatcher) {
	seen := map[string]bool{}
	initial := true
	for e := range w.Updates() {
		if e == nil {
			if initial {
				initial = false
				r.sweep(seen)
				seen = nil
				r.synced.Store(true)
				r.hearing.Store(true)
			}
			continue
		}
		if seen != nil && e.Operation() == jetstream.KeyValuePut {
			seen[e.Key()] = true
		}
		r.apply(e)
	}
}

// sweep reports gone the entries not in seen (a restarted watch's
// state).
func (r *Roster) sweep(seen map[string]bool) {
	var gone []RosterEntry
	r.mu.Lock()
	for _, rn := range r.nodes {
		for k, e := range rn.entries {
			if seen[k] {
				continue
			}
			delete(rn.entries, k)
			if !rn.dead {
				e.Gone, e.Info, e.Subscriptions = true, nil, 0
				gone = append(gone, e)
			}
		}
	}
	r.mu.Unlock()
	for _, e := range gone {
		r.onChange(e)
	}
}

// apply takes one change of the bucket.
func (r *Roster) apply(e jetstream.KeyValueEntry) {
	k := e.Key()
	put := e.Operation() == jetstream.KeyValuePut
	if rest, ok := strings.CutPrefix(k, "n."); ok {
		n, err := strconv.ParseUint(rest, 10, 32)
		if err != nil || uint32(n) == r.cfg.Node {
			return
		}
		r.beatOf(uint32(n), put)
		return
	}
	entry, ok := r.parseMember(k)
	if !ok {
		return
	}
	if entry.Node == r.cfg.Node {
		// Ours: written by us, or removed by a node that took us for
		// dead; make the bucket say what we have.
		r.mu.Lock()
		if _, have := r.local[k]; have != put {
			r.queueLocked(k)
		}
		r.mu.Unlock()
		return
	}
	r.remote.Add(1)
	var report []RosterEntry
	r.mu.Lock()
	rn := r.nodeLocked(entry.Node)
	_, had := rn.entries[k]
	switch {
	case put && entry.User == "":
		entry.Subscriptions, _ = strconv.Atoi(string(e.Value()))
		rn.entries[k] = entry
		if !rn.dead {
			report = append(report, entry)
		}
	case put && !had:
		entry.Info = append([]byte(nil), e.Value()...)
		rn.entries[k] = entry
		if !rn.dead {
			report = append(report, entry)
		}
	case put:
		entry.Info = append([]byte(nil), e.Value()...)
		rn.entries[k] = entry
	case had:
		delete(rn.entries, k)
		if !rn.dead {
			entry.Gone = true
			report = append(report, entry)
		} else if len(rn.entries) == 0 {
			delete(r.nodes, entry.Node) // a dead node's keys are all gone
		}
	}
	r.mu.Unlock()
	for _, x := range report {
		r.onChange(x)
	}
}

// nodeLocked is node n's record, made when new (its silence counted from
// now). Lock held.
func (r *Roster) nodeLocked(n uint32) *rosterNode {
	rn := r.nodes[n]
	if rn == nil {
		rn = &rosterNode{last: time.Now(), entries: map[string]RosterEntry{}}
		r.nodes[n] = rn
	}
	return rn
}

// beatOf takes node n's heartbeat (put) or its removal (a shutdown, or
// a purge of a dead node): a dead node that beats again is alive, with
// its entries; a removed one is gone.
func (r *Roster) beatOf(n uint32, put bool) {
	var report []RosterEntry
	r.mu.Lock()
	rn := r.nodeLocked(n)
	switch {
	case put:
		rn.last = time.Now()
		if rn.dead {
			rn.dead = false
			for _, e := range rn.entries {
				report = append(report, e)
			}
		}
	case !rn.dead:
		rn.dead = true
		for _, e := range rn.entries {
			e.Gone, e.NodeDown, e.Info, e.Subscriptions = true, true, nil, 0
			report = append(report, e)
		}
	}
	if rn.dead && len(rn.entries) == 0 {
		delete(r.nodes, n)
	}
	r.mu.Unlock()
	for _, x := range report {
		r.onChange(x)
	}
}

// Close removes the heartbeat first, so the other nodes take this
// node's remaining entries for gone at once (NodeDown), then its keys
// (within 2 s), and disconnects.
func (r *Roster) Close() error {
	if r.ctx.Err() != nil {
		return nil
	}
	r.cancel() // no heartbeat after its removal
	if kvp := r.kv.Load(); kvp != nil && r.nc.IsConnected() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = r.remove(ctx, *kvp, r.nodeKey(r.cfg.Node))
		r.mu.Lock()
		keys := append([]string(nil), r.order...)
		for k := range r.local {
			if !r.pend[k] {
				keys = append(keys, k)
			}
		}
		r.mu.Unlock()
		for _, k := range keys {
			_ = r.remove(ctx, *kvp, k)
		}
		cancel()
	}
	r.nc.Close()
	return nil
}

// beat is a heartbeat's value: the time, for people reading the bucket.
func (r *Roster) beat() []byte {
	return []byte(strconv.FormatInt(time.Now().UnixMilli(), 10))
}

// Keys of the bucket.
var keyEncoding = base64.RawURLEncoding

func (r *Roster) nodeKey(n uint32) string { return "n." + strconv.FormatUint(uint64(n), 10) }

func (r *Roster) memberKey(n uint32, channel, user string) string {
	return "m." + strconv.FormatUint(uint64(n), 10) + "." + keyEncoding.EncodeToString([]byte(channel)) + "." + keyEncoding.EncodeToString([]byte(user))
}

// parseMember reads a member key, or an occupancy key (no User).
func (r *Roster) parseMember(k string) (RosterEntry, bool) {
	parts := strings.Split(k, ".")
	switch {
	case len(parts) == 4 && parts[0] == "m":
	case len(parts) == 3 && parts[0] == "o":
	default:
		return RosterEntry{}, false
	}
	n, err := strconv.ParseUint(parts[1], 10, 32)
	ch, err2 := keyEncoding.DecodeString(parts[2])
	if err != nil || err2 != nil || n == 0 {
		return RosterEntry{}, false
	}
	e := RosterEntry{Node: uint32(n), Channel: string(ch)}
	if len(parts) == 4 {
		u, err := keyEncoding.DecodeString(parts[3])
		if err != nil || len(u) == 0 {
			return RosterEntry{}, false
		}
		e.User = string(u)
	}
	return e, true
}
