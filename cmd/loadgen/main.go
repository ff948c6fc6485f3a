// Command loadgen drives many WebSocket connections against a server and
// measures deliveries, losses and latency; the logic lives in package
// loadgen. Examples:
//
//	loadgen -url 'ws://127.0.0.1:8080/ws?channel=bench' -conns 10000 -scenario idle -duration 30s
//	loadgen -url 'ws://127.0.0.1:8080/ws?channel=bench' -conns 10000 -scenario broadcast \
//	    -pub-http 'http://127.0.0.1:8081/api/publish?channel=bench' -count 20 -json out.json -plots out/
//	loadgen -url ws://127.0.0.1:9000/ -scenario echo -conns 1000 -rate 20000
//	loadgen ... -procs 4 -conns 60000        (four worker processes)
//	loadgen -url ws://127.0.0.1:8080/ws -scenario jitter -conns 1000 -rate 100 -duration 60s \
//	    -jitter-every 15s -offline 2s -pub-http 'http://127.0.0.1:8081/api/publish?channel=bench'
//	loadgen -urls ws://127.0.0.1:8080/ws,ws://127.0.0.1:8090/ws -scenario deploy -deploy-at 10s \
//	    -deploy-cmd 'kill -TERM 1234' -pub-http 'http://127.0.0.1:8091/api/publish?channel=bench' ...
//	loadgen -url 'ws://127.0.0.1:8080/ws?channel=bench' -scenario shootout -conns 64000 \
//	    -shootout-start 1000 -p95-bound 500ms -pub-http ... -count 10 -interval 100ms
//	LOADGEN_TOKEN_SECRET=S loadgen -url 'ws://127.0.0.1:8080/ws?channel=bench' -conns 10000
//	    (each connection with its own HS256 token, sub u0 .. u9999)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/herald-push/herald/loadgen"
)

func main() {
	if os.Getenv(loadgen.WorkerEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := loadgen.ServeWorker(ctx, os.Stdin, os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen worker:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:]); err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "loadgen") {
			msg = "loadgen: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}

// tokenSecretEnv holds the -token-secret default, to keep the secret out of
// the process list.
const tokenSecretEnv = "LOADGEN_TOKEN_SECRET"

// headerList collects repeated -header flags.
type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

func run(args []string) error {
	var cfg loadgen.Config
	var headers headerList
	var sources, jsonOut, plots, urls, tokenChannels string
	var printReady bool
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080/ws?channel=bench", "WebSocket URL")
	fs.Var(&headers, "header", "extra request header \"Name: value\" (repeatable)")
	fs.StringVar(&cfg.Scenario, "scenario", "idle", "idle, broadcast, sustained, echo, storm, slow, jitter, deploy or shootout")
	fs.IntVar(&cfg.Conns, "conns", 1000, "receiving connections")
	fs.DurationVar(&cfg.Duration, "duration", 0, "main phase length (default 10s)")
	fs.DurationVar(&cfg.Deadline, "deadline", 0, "hard bound on the whole run (default: ramp + duration + drain + 30s)")
	fs.DurationVar(&cfg.Drain, "drain", 0, "wait for late deliveries after publishing (default 5s)")
	fs.Float64Var(&cfg.ConnectRate, "connect-rate", 0, "connection attempts per second, all processes (default 5000; <0 unbounded)")
	fs.IntVar(&cfg.ConnectConcurrency, "connect-concurrency", 0, "handshakes in flight (default 256)")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 0, "bound on one connection attempt (default 10s)")
	fs.IntVar(&cfg.Retries, "retries", 0, "retries per connection (default 3; <0 none)")
	fs.StringVar(&sources, "source-addrs", "", "local IPs to bind, comma-separated; IP+K for K consecutive (default 127.0.0.2.. for a loopback target)")
	fs.IntVar(&cfg.Loops, "loops", 0, "client event loops per process (default: one per CPU)")
	fs.StringVar(&cfg.SubMsg, "sub-msg", "", "text message sent on every connection after the handshake")
	fs.StringVar(&cfg.PubHTTP, "pub-http", "", "URL to POST each published payload to")
	fs.StringVar(&cfg.PubWS, "pub-ws", "", "publish as this text message on a separate connection; {payload} is replaced")
	fs.StringVar(&cfg.PubWSURL, "pub-ws-url", "", "URL of the publishing connection (default -url)")
	fs.IntVar(&cfg.PubWorkers, "pub-workers", 0, "concurrent publish requests (default 8)")
	fs.IntVar(&cfg.PayloadSize, "payload-size", 0, "pad payloads to this many bytes")
	fs.IntVar(&cfg.Count, "count", 0, "broadcast: messages (default 10)")
	fs.DurationVar(&cfg.Interval, "interval", 0, "broadcast: pause between messages (default 1s)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "sustained/slow: publishes per second; echo: messages per second in total (default 100)")
	fs.Float64Var(&cfg.SlowShare, "slow-share", 0, "slow: share of connections that stop reading (default 0.1)")
	fs.StringVar(&urls, "urls", "", "deploy: the nodes' WebSocket URLs, comma-separated (instead of -url)")
	fs.StringVar(&cfg.Channel, "channel", "", "jitter/deploy: channel subscribed with {\"op\":\"sub\"} and since (default bench)")
	fs.DurationVar(&cfg.JitterEvery, "jitter-every", 0, "jitter: mean time between a client's cuts, T (default 15s)")
	fs.StringVar(&cfg.JitterDist, "jitter-dist", "", "jitter: exp (default) or uniform (T/2 to 3T/2)")
	fs.DurationVar(&cfg.Offline, "offline", 0, "jitter: time a cut client stays offline, D (default 2s)")
	fs.DurationVar(&cfg.DeployAt, "deploy-at", 0, "deploy: when in the main phase -deploy-cmd runs (default duration/3)")
	fs.StringVar(&cfg.DeployCmd, "deploy-cmd", "", "deploy: shell command that takes a node away (e.g. 'kill -TERM PID')")
	fs.IntVar(&cfg.ShootoutStart, "shootout-start", 0, "shootout: first step's clients (default 1000)")
	fs.Float64Var(&cfg.ShootoutFactor, "shootout-factor", 0, "shootout: growth from step to step (default 2)")
	fs.DurationVar(&cfg.P95Bound, "p95-bound", 0, "shootout: a step passes with p95 at most this (default 500ms)")
	fs.DurationVar(&cfg.ShootoutSettle, "shootout-settle", 0, "shootout: pause between a step's ramp and its broadcasts (default 250ms; <0 none)")
	fs.StringVar(&cfg.TokenSecret, "token-secret", "", "give each connection its own HS256 token (sub u<i>) signed with this secret (default $"+tokenSecretEnv+")")
	fs.StringVar(&tokenChannels, "token-channels", "", "with -token-secret: channel patterns granted, comma-separated (default the URL's channel parameters, or -channel)")
	fs.DurationVar(&cfg.TokenTTL, "token-ttl", 0, "with -token-secret: token lifetime (default 24h)")
	fs.IntVar(&cfg.Procs, "procs", 1, "worker processes (to pass the open-file limit of one)")
	fs.StringVar(&jsonOut, "json", "", "write the result as JSON to this file")
	fs.StringVar(&plots, "plots", "", "write latency.svg, ramp.svg and rate.svg (and recovery.svg or shootout.svg) to this directory")
	fs.BoolVar(&printReady, "print-ready", false, "print \"READY <open>\" on stdout when the ramp is over")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg.Headers = headers
	if cfg.TokenSecret == "" {
		cfg.TokenSecret = os.Getenv(tokenSecretEnv)
	}
	if tokenChannels != "" {
		cfg.TokenChannels = strings.Split(tokenChannels, ",")
	}
	if urls != "" {
		cfg.URLs = strings.Split(urls, ",")
		cfg.URL = cfg.URLs[0]
	}
	var err error
	if cfg.SourceAddrs, err = loadgen.ParseSourceAddrs(sources); err != nil {
		return err
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	if printReady {
		cfg.Ready = func(open int) { fmt.Printf("READY %d\n", open) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, runErr := loadgen.Run(ctx, cfg)
	if res == nil {
		return runErr
	}
	if err := res.WriteSummary(os.Stderr); err != nil {
		return err
	}
	if jsonOut != "" {
		f, err := os.Create(jsonOut)
		if err != nil {
			return fmt.Errorf("json: %w", err)
		}
		werr := res.WriteJSON(f)
		if err := errors.Join(werr, f.Close()); err != nil {
			return err
		}
	}
	if plots != "" {
		if err := os.MkdirAll(plots, 0o755); err != nil {
			return fmt.Errorf("plots: %w", err)
		}
		if err := loadgen.WritePlots(plots, res); err != nil {
			return err
		}
	}
	return runErr
}
