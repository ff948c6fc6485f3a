package loadgen

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Scenario names accepted in Config.Scenario.
const (
	ScenarioIdle      = "idle"
	ScenarioBroadcast = "broadcast"
	ScenarioSustained = "sustained"
	ScenarioEcho      = "echo"
	ScenarioStorm     = "storm"
	ScenarioSlow      = "slow"
	ScenarioJitter    = "jitter"
	ScenarioDeploy    = "deploy"
	ScenarioShootout  = "shootout"
)

// Jitter distributions accepted in Config.JitterDist.
const (
	JitterExp     = "exp"
	JitterUniform = "uniform"
)

// Config describes one run. The zero value of every field but URL is valid
// and means the default written next to it. A Config is read-only once Run
// has it.
type Config struct {
	// URL is the WebSocket endpoint, ws://host:port/path?query. wss is not
	// supported.
	URL string `json:"url"`
	// Headers are extra request header fields, each "Name: value".
	Headers []string `json:"headers,omitempty"`
	// Scenario is one of the Scenario* names; "" means idle.
	Scenario string `json:"scenario"`
	// Conns is the number of receiving connections; 0 means 1000.
	Conns int `json:"conns"`

	// Duration is how long the scenario's main phase lasts (holding, for
	// idle; publishing, for sustained, echo and slow); 0 means 10 s.
	Duration time.Duration `json:"duration"`
	// Deadline bounds the whole run, ramp and drain included; 0 means
	// ramp time at ConnectRate + Duration + Drain + 30 s. When it passes,
	// Run stops and reports what it has.
	Deadline time.Duration `json:"deadline"`
	// Drain is how long to wait after publishing for late deliveries
	// before counting what is missing as lost; 0 means 5 s.
	Drain time.Duration `json:"drain"`

	// ConnectRate bounds new connection attempts per second (all
	// processes together); 0 means 5000, negative means unbounded.
	ConnectRate float64 `json:"connect_rate"`
	// ConnectConcurrency is how many handshakes may be in flight at once;
	// 0 means 256.
	ConnectConcurrency int `json:"connect_concurrency"`
	// ConnectTimeout bounds one attempt, TCP connect and handshake; 0
	// means 10 s.
	ConnectTimeout time.Duration `json:"connect_timeout"`
	// Retries is how many times a failed attempt is retried (with
	// backoff); 0 means 3, negative means none.
	Retries int `json:"retries"`
	// SourceAddrs are the local IPs connections are bound to, in turn, so
	// that one destination gets more than one source address's ephemeral
	// ports. Empty means the system's choice, unless the target is on
	// 127.0.0.0/8: then 127.0.0.2 onwards, one address per 20,000
	// connections. See ParseSourceAddrs.
	SourceAddrs []string `json:"source_addrs,omitempty"`
	// Loops is the number of client event loops; 0 means one per CPU.
	Loops int `json:"loops"`

	// SubMsg, when set, is sent as a text message on every connection
	// right after the handshake (a subscribe command).
	SubMsg string `json:"sub_msg,omitempty"`
	// PubHTTP is the URL that publishes a message: the payload is POSTed
	// as the request body.
	PubHTTP string `json:"pub_http,omitempty"`
	// PubWS, when set instead of PubHTTP, is a text message template sent
	// on a separate WebSocket connection to URL (or PubWSURL) to publish;
	// "{payload}" in it is replaced by the payload, e.g.
	// {"op":"pub","channel":"bench","data":{payload}}.
	PubWS string `json:"pub_ws,omitempty"`
	// PubWSURL is the URL of the publishing connection; "" means URL.
	PubWSURL string `json:"pub_ws_url,omitempty"`
	// PubWorkers is the number of publishing goroutines (HTTP requests in
	// flight); 0 means 8. Ignored with PubWS, which has one connection.
	PubWorkers int `json:"pub_workers"`
	// PayloadSize pads each payload to at least this many bytes; the
	// smallest payload is about 40 bytes.
	PayloadSize int `json:"payload_size"`

	// Count is, for broadcast, the number of messages; 0 means 10.
	// (Sustained, slow and echo send Rate × Duration messages.)
	Count int `json:"count"`
	// Interval is, for broadcast, the pause between messages; 0 means 1 s.
	Interval time.Duration `json:"interval"`
	// Rate is messages per second: publishes for sustained and slow, sent
	// messages (over all connections) for echo; 0 means 100.
	Rate float64 `json:"rate"`
	// SlowShare is, for slow, the share of connections that stop reading;
	// 0 means 0.1.
	SlowShare float64 `json:"slow_share"`

	// Channel is the channel the recovery scenarios (jitter, deploy)
	// subscribe to with {"op":"sub"} after each handshake, with since on
	// a reconnection; "" means "bench". Their URLs must not subscribe to
	// it themselves.
	Channel string `json:"channel,omitempty"`
	// URLs are the nodes for deploy: connection i starts on URLs[i%K] and,
	// when its node goes away, reconnects to the next ones in turn. Empty
	// means URL alone.
	URLs []string `json:"urls,omitempty"`
	// JitterEvery is, for jitter, the mean time between two cuts of one
	// client (T); 0 means 15 s. JitterDist draws each interval: "exp"
	// (exponential with mean T, the default) or "uniform" (T/2 to 3T/2).
	JitterEvery time.Duration `json:"jitter_every,omitempty"`
	JitterDist  string        `json:"jitter_dist,omitempty"`
	// Offline is how long a cut client stays away before reconnecting
	// (D); 0 means 2 s.
	Offline time.Duration `json:"offline,omitempty"`
	// DeployAt is, for deploy, when in the main phase DeployCmd runs (or
	// Deploy is called); 0 means Duration/3. DeployCmd is a shell command
	// run with sh -c (e.g. "kill -TERM 1234"); Deploy is its in-process
	// form for tests and programs.
	DeployAt  time.Duration `json:"deploy_at,omitempty"`
	DeployCmd string        `json:"deploy_cmd,omitempty"`
	Deploy    func() error  `json:"-"`
	// ShootoutStart is, for shootout, the first step's client count (0
	// means 1000) and ShootoutFactor the growth from step to step (0 means
	// 2); Conns is the largest count tried, capped by the open-file limit.
	// A step broadcasts Count messages Interval apart and passes when every
	// client is open, has every message and the p95 of the deliveries'
	// latency is at most P95Bound (0 means 500 ms).
	ShootoutStart  int           `json:"shootout_start,omitempty"`
	ShootoutFactor float64       `json:"shootout_factor,omitempty"`
	P95Bound       time.Duration `json:"p95_bound,omitempty"`
	// ShootoutSettle is the pause between a step's ramp and its first
	// broadcast (0 means 250 ms, negative none): servers that add a
	// connection to their broadcast set after writing its 101 (gorilla's
	// and gws's examples do) would otherwise miss the newest clients'
	// first message, a loss that says nothing of their fan-out.
	ShootoutSettle time.Duration `json:"shootout_settle,omitempty"`

	// Procs > 1 runs the connections in that many worker processes (see
	// ServeWorker), each with an equal share of Conns, ConnectRate and
	// Rate, and its own source addresses.
	Procs int `json:"procs"`
	// Exe and ExeArgs start a worker; "" means the running executable with
	// no arguments. The worker is recognised by LOADGEN_WORKER=1.
	Exe     string   `json:"-"`
	ExeArgs []string `json:"-"`

	// TokenSecret, when set, gives every connection its own HS256 token
	// signed with it (at least auth.MinHMACSecret bytes): connection i,
	// counted over all processes, presents sub "u<i>" and TokenChannels as
	// its channels, as token= in the URL's query (replacing a token
	// already there), on its first connection and on every reconnection.
	// The tokens are minted before the ramp. The publishing connection
	// (PubWS) keeps its URL as given.
	TokenSecret string `json:"token_secret,omitempty"`
	// TokenChannels are the channel patterns the tokens grant; empty means
	// the channel parameters of URL, or Channel when it has none.
	TokenChannels []string `json:"token_channels,omitempty"`
	// TokenTTL is the tokens' lifetime from their minting; 0 means 24 h.
	TokenTTL time.Duration `json:"token_ttl,omitempty"`
	// TokenFirst is the index of this process's first connection: Run sets
	// it for each worker process, so that their subjects do not overlap.
	TokenFirst int `json:"token_first,omitempty"`

	// Progress, when not nil, receives a progress line every second.
	Progress io.Writer `json:"-"`
	// Ready, when not nil, is called once when the ramp is over, with the
	// number of open connections.
	Ready func(open int) `json:"-"`
}

// withDefaults returns cfg with zero fields filled in, or an error for a
// field that cannot work.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Scenario == "" {
		cfg.Scenario = ScenarioIdle
	}
	if cfg.URL == "" && len(cfg.URLs) > 0 {
		cfg.URL = cfg.URLs[0]
	}
	switch cfg.Scenario {
	case ScenarioIdle, ScenarioBroadcast, ScenarioSustained, ScenarioEcho, ScenarioStorm, ScenarioSlow:
	case ScenarioJitter, ScenarioDeploy, ScenarioShootout:
		if cfg.Procs > 1 {
			return cfg, fmt.Errorf("loadgen: scenario %s runs in one process", cfg.Scenario)
		}
	default:
		return cfg, fmt.Errorf("loadgen: unknown scenario %q", cfg.Scenario)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return cfg, fmt.Errorf("loadgen: url: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "http" {
		return cfg, fmt.Errorf("loadgen: url %q: scheme must be ws", cfg.URL)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.Conns, 1000)
	def(&cfg.ConnectConcurrency, 256)
	def(&cfg.Retries, 3)
	def(&cfg.PubWorkers, 8)
	def(&cfg.Count, 10)
	def(&cfg.Procs, 1)
	defDur(&cfg.Duration, 10*time.Second)
	defDur(&cfg.Drain, 5*time.Second)
	defDur(&cfg.ConnectTimeout, 10*time.Second)
	defDur(&cfg.Interval, time.Second)
	if cfg.ConnectRate == 0 {
		cfg.ConnectRate = 5000
	}
	if cfg.Rate == 0 {
		cfg.Rate = 100
	}
	if cfg.SlowShare == 0 {
		cfg.SlowShare = 0.1
	}
	defDur(&cfg.JitterEvery, 15*time.Second)
	defDur(&cfg.Offline, 2*time.Second)
	defDur(&cfg.DeployAt, cfg.Duration/3)
	defDur(&cfg.P95Bound, 500*time.Millisecond)
	defDur(&cfg.ShootoutSettle, 250*time.Millisecond)
	def(&cfg.ShootoutStart, 1000)
	if cfg.ShootoutFactor == 0 {
		cfg.ShootoutFactor = 2
	}
	if cfg.Channel == "" {
		cfg.Channel = "bench"
	}
	if err := cfg.tokenDefaults(u); err != nil {
		return cfg, err
	}
	if cfg.JitterDist == "" {
		cfg.JitterDist = JitterExp
	}
	if cfg.JitterDist != JitterExp && cfg.JitterDist != JitterUniform {
		return cfg, fmt.Errorf("loadgen: jitter distribution %q: want exp or uniform", cfg.JitterDist)
	}
	if cfg.ShootoutFactor <= 1 {
		return cfg, errors.New("loadgen: shootout factor must be above 1")
	}
	if cfg.Scenario == ScenarioShootout {
		cfg.Conns = min(cfg.Conns, fdLimit()-fdHeadroom)
		cfg.ShootoutStart = max(1, min(cfg.ShootoutStart, cfg.Conns))
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.Deadline == 0 {
		ramp := time.Duration(0)
		if cfg.ConnectRate > 0 {
			ramp = time.Duration(float64(cfg.Conns) / cfg.ConnectRate * float64(time.Second))
		}
		extra := cfg.Duration
		switch cfg.Scenario {
		case ScenarioBroadcast:
			extra = time.Duration(cfg.Count) * cfg.Interval
		case ScenarioShootout:
			steps := 1 + int(math.Ceil(math.Log(float64(cfg.Conns)/float64(cfg.ShootoutStart))/math.Log(cfg.ShootoutFactor)))
			extra = time.Duration(steps) * (time.Duration(cfg.Count)*cfg.Interval + cfg.Drain + ramp + max(cfg.ShootoutSettle, 0))
		case ScenarioJitter, ScenarioDeploy:
			extra = cfg.Duration + cfg.Offline
		}
		cfg.Deadline = ramp + extra + cfg.Drain + 30*time.Second
	}
	if cfg.Conns < 0 || cfg.Procs < 1 || cfg.Rate < 0 || cfg.SlowShare < 0 || cfg.SlowShare >= 1 {
		return cfg, errors.New("loadgen: conns, procs, rate and slow share must be positive (slow share below 1)")
	}
	switch cfg.Scenario {
	case ScenarioBroadcast, ScenarioSustained, ScenarioSlow, ScenarioJitter, ScenarioDeploy, ScenarioShootout:
		if cfg.PubHTTP == "" && cfg.PubWS == "" {
			return cfg, fmt.Errorf("loadgen: scenario %s needs a publish path (PubHTTP or PubWS)", cfg.Scenario)
		}
	}
	if len(cfg.SourceAddrs) == 0 && isLoopback(u.Hostname()) {
		cfg.SourceAddrs = loopbackRange(2, max((cfg.Conns+19999)/20000, cfg.Procs))
	}
	return cfg, nil
}

// nodes returns the URLs connections are spread over: URLs, or URL.
func (cfg *Config) nodes() []string {
	if len(cfg.URLs) > 0 {
		return cfg.URLs
	}
	return []string{cfg.URL}
}

// target returns the host:port to dial, the Host header and the request
// URI of cfg.URL.
func (cfg *Config) target() (hostport, host, uri string, err error) {
	return parseTarget(cfg.URL)
}

// parseTarget returns the host:port to dial, the Host header and the
// request URI of a ws:// URL.
func parseTarget(raw string) (hostport, host, uri string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", fmt.Errorf("loadgen: url: %w", err)
	}
	hostport = u.Host
	if u.Port() == "" {
		hostport = net.JoinHostPort(u.Hostname(), "80")
	}
	return hostport, u.Host, u.RequestURI(), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() && ip.To4() != nil
}

// loopbackRange returns n addresses 127.0.0.first onwards (spilling into
// 127.0.1.x and beyond).
func loopbackRange(first, n int) []string {
	out := make([]string, 0, n)
	for i := range n {
		v := first + i
		out = append(out, fmt.Sprintf("127.0.%d.%d", v/256, v%256))
	}
	return out
}

// ParseSourceAddrs parses a -source-addrs flag: a comma-separated list of
// IPs, where an item "IP+K" stands for K consecutive IPv4 addresses from IP
// (127.0.0.2+8 is 127.0.0.2 to 127.0.0.9). "" gives nil.
func ParseSourceAddrs(s string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		base, count, found := strings.Cut(item, "+")
		ip := net.ParseIP(base).To4()
		if ip == nil && found || net.ParseIP(base) == nil {
			return nil, fmt.Errorf("loadgen: source address %q: not an IP", item)
		}
		if !found {
			out = append(out, base)
			continue
		}
		k, err := strconv.Atoi(count)
		if err != nil || k < 1 || k > 1<<16 {
			return nil, fmt.Errorf("loadgen: source address %q: bad count", item)
		}
		v := uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
		for i := range uint32(k) {
			w := v + i
			out = append(out, net.IPv4(byte(w>>24), byte(w>>16), byte(w>>8), byte(w)).String())
		}
	}
	return out, nil
}

// share returns the part of total that worker i of n takes: total/n, plus
// one for the first total%n workers.
func share(total, i, n int) int {
	s := total / n
	if i < total%n {
		s++
	}
	return s
}

// workerAddrs returns the source addresses of worker i of n: an equal
// contiguous part of addrs when there are enough, else one of them in turn.
func workerAddrs(addrs []string, i, n int) []string {
	if len(addrs) == 0 {
		return nil
	}
	if len(addrs) < n {
		return addrs[i%len(addrs) : i%len(addrs)+1]
	}
	lo := i * len(addrs) / n
	hi := (i + 1) * len(addrs) / n
	return addrs[lo:hi]
}
