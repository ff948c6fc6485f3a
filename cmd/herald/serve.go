package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/herald-push/herald/api"
	"github.com/herald-push/herald/server"
)

// serveOptions is the whole configuration of `herald serve`; it is also the
// shape of the JSON config file.
type serveOptions struct {
	server.Config
	// APIListen is the HTTP API listener (publish, stats, metrics, demo).
	APIListen string `json:"api_listen"`
	// AllowAnonymous lets clients connect without a token.
	AllowAnonymous bool `json:"allow_anonymous"`
	// Pprof mounts /debug/pprof/ on the API listener.
	Pprof     bool   `json:"pprof"`
	LogLevel  string `json:"log_level"`
	LogFormat string `json:"log_format"`
}

func newServeCmd() *cobra.Command {
	opts := serveOptions{Config: server.DefaultConfig(), APIListen: ":8081", Pprof: true, LogLevel: "info", LogFormat: "text"}
	var configPath string
	var printConfig bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run a herald node",
		Long: `Run a herald node. Settings come from defaults, then the JSON file given
with --config, then HERALD_* environment variables (--max-conns is
HERALD_MAX_CONNS), then flags.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := loadLayered(cmd.Flags(), configPath, &opts); err != nil {
				return err
			}
			if printConfig {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(opts)
			}
			return runServe(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&configPath, "config", "", "JSON config file")
	fs.BoolVar(&printConfig, "print-config", false, "print the effective configuration as JSON and exit")
	bindServerFlags(fs, &opts)
	return cmd
}

func bindServerFlags(fs *pflag.FlagSet, o *serveOptions) {
	c := &o.Config
	fs.StringVar(&c.Listen, "listen", c.Listen, "WebSocket listen address")
	fs.BoolVar(&c.Echo, "echo", c.Echo, "echo mode: every message is sent back, on any path (for conformance suites)")
	fs.IntVar(&c.Loops, "loops", c.Loops, "event loops (0 = one per core)")
	fs.Int64Var(&c.MaxFrameSize, "max-frame-size", c.MaxFrameSize, "largest frame payload accepted, bytes")
	fs.Int64Var(&c.MaxMessageSize, "max-message-size", c.MaxMessageSize, "largest reassembled message accepted, bytes")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", c.MaxHeaderBytes, "largest upgrade request header, bytes")
	fs.Var(&c.HandshakeTimeout, "handshake-timeout", "time allowed to complete the upgrade request")
	fs.IntVar(&c.MaxConns, "max-conns", c.MaxConns, "most concurrent connections (0 = kernel limit)")
	fs.Var(&c.PingInterval, "ping-interval", "ping a connection silent this long (0 = never)")
	fs.Var(&c.PongTimeout, "pong-timeout", "close a pinged connection silent this long")
	fs.IntVar(&c.WriteBufferLimit, "write-buffer-limit", c.WriteBufferLimit, "most unsent bytes queued for one connection")
	fs.Var(&c.DrainTimeout, "drain-timeout", "graceful shutdown window")
	fs.IntVar(&c.SocketRecvBuffer, "socket-recv-buffer", c.SocketRecvBuffer, "SO_RCVBUF per connection, bytes (0 = kernel autotuning)")
	fs.IntVar(&c.SocketSendBuffer, "socket-send-buffer", c.SocketSendBuffer, "SO_SNDBUF per connection, bytes (0 = kernel autotuning)")
	fs.StringVar(&o.APIListen, "api-listen", o.APIListen, "HTTP API listen address (empty = no API listener)")
	fs.BoolVar(&o.AllowAnonymous, "allow-anonymous", o.AllowAnonymous, "let clients connect without a token")
	fs.BoolVar(&o.Pprof, "pprof", o.Pprof, "serve /debug/pprof/ on the API listener")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "debug, info, warn or error")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "text or json")
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	ho := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(os.Stderr, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, ho)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", format)
}

func runServe(ctx context.Context, o serveOptions) error {
	log, err := newLogger(o.LogLevel, o.LogFormat)
	if err != nil {
		return err
	}
	raiseFileLimit(log, o.MaxConns)
	srv, err := server.New(o.Config, nil, log)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	select {
	case <-srv.Ready():
	case err := <-errc:
		return err
	}
	var apiSrv *http.Server
	if o.APIListen != "" {
		ln, err := net.Listen("tcp", o.APIListen)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return fmt.Errorf("api listener: %w", err)
		}
		apiSrv = &http.Server{
			Handler:           api.NewHandler(readiness{srv}, api.Options{EnablePprof: o.Pprof}),
			ReadHeaderTimeout: 10 * time.Second,
		}
		go func() {
			if err := apiSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("api listener stopped", "err", err)
			}
		}()
		log.Info("api listening", "http", "http://"+displayAddr(ln.Addr().String())+"/")
	}
	mode := "push"
	if o.Echo {
		mode = "echo"
	}
	log.Info("herald listening", "mode", mode, "websocket", "ws://"+displayAddr(srv.Addr().String())+"/", "version", version)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	select {
	case err := <-errc:
		return err
	case s := <-sig:
		log.Info("signal received; draining", "signal", s.String(), "drain_timeout", o.DrainTimeout)
	}
	dctx, cancel := context.WithTimeout(context.Background(), o.DrainTimeout.D())
	defer cancel()
	if apiSrv != nil {
		// Keep /readyz answering "draining" while connections drain.
		defer apiSrv.Close()
	}
	if err := srv.Shutdown(dctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("serve returned", "err", err)
	}
	log.Info("stopped")
	return nil
}

// readiness adapts the server to api.Backend.
type readiness struct{ srv *server.Server }

func (r readiness) Publish(string, []byte) (api.Published, error) {
	return api.Published{}, api.ErrUnavailable
}
func (r readiness) DisconnectUser(string, string) (int, error) { return 0, nil }
func (r readiness) Channels() any                              { return nil }
func (r readiness) Stats() any                                 { return nil }

func (r readiness) Ready() (bool, string) {
	if r.srv.Draining() {
		return false, "draining"
	}
	return true, ""
}

// displayAddr turns "[::]:8080" or ":8080" into "localhost:8080" for the
// "how to connect" line.
func displayAddr(a string) string {
	for _, p := range []string{"[::]", "0.0.0.0"} {
		if strings.HasPrefix(a, p+":") {
			return "localhost" + a[len(p):]
		}
	}
	if strings.HasPrefix(a, ":") {
		return "localhost" + a
	}
	return a
}
