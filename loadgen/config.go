package loadgen

import (
	"errors"
	"fmt"
	"io"
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

	// Procs > 1 runs the connections in that many worker processes (see
	// ServeWorker), each with an equal share of Conns, ConnectRate and
	// Rate, and its own source addresses.
	Procs int `json:"procs"`
	// Exe and ExeArgs start a worker; "" means the running executable with
	// no arguments. The worker is recognised by LOADGEN_WORKER=1.
	Exe     string   `json:"-"`
	ExeArgs []string `json:"-"`

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
	switch cfg.Scenario {
	case ScenarioIdle, ScenarioBroadcast, ScenarioSustained, ScenarioEcho, ScenarioStorm, ScenarioSlow:
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
	if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.Deadline == 0 {
		ramp := time.Duration(0)
		if cfg.ConnectRate > 0 {
			ramp = time.Duration(float64(cfg.Conns) / cfg.ConnectRate * float64(time.Second))
		}
		extra := cfg.Duration
		if cfg.Scenario == ScenarioBroadcast {
			extra = time.Duration(cfg.Count) * cfg.Interval
		}
		cfg.Deadline = ramp + extra + cfg.Drain + 30*time.Second
	}
	if cfg.Conns < 0 || cfg.Procs < 1 || cfg.Rate < 0 || cfg.SlowShare < 0 || cfg.SlowShare >= 1 {
		return cfg, errors.New("loadgen: conns, procs, rate and slow share must be positive (slow share below 1)")
	}
	switch cfg.Scenario {
	case ScenarioBroadcast, ScenarioSustained, ScenarioSlow:
		if cfg.PubHTTP == "" && cfg.PubWS == "" {
			return cfg, fmt.Errorf("loadgen: scenario %s needs a publish path (PubHTTP or PubWS)", cfg.Scenario)
		}
	}
	if len(cfg.SourceAddrs) == 0 && isLoopback(u.Hostname()) {
		cfg.SourceAddrs = loopbackRange(2, max((cfg.Conns+19999)/20000, cfg.Procs))
	}
	return cfg, nil
}

// target returns the host:port to dial, the Host header and the request
// URI of cfg.URL.
func (cfg *Config) target() (hostport, host, uri string, err error) {
	u, err := url.Parse(cfg.URL)
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
