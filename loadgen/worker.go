package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// WorkerEnv is the environment variable that marks a worker process: a
// program that runs loadgen with Config.Procs > 1 must call ServeWorker
// (and nothing else) when it is set to "1".
const WorkerEnv = "LOADGEN_WORKER"

// The worker protocol: the coordinator writes the worker's Config as one
// JSON line on its stdin, then one command per line (cmdRamp, cmdBegin,
// cmdAct, cmdFinish), each answered on stdout by an event line; the worker
// also writes a live event twice a second. Stdout carries nothing else.
const (
	cmdRamp   = "ramp"
	cmdBegin  = "begin"
	cmdAct    = "act"
	cmdFinish = "finish"
)

// event is one line a worker writes.
type event struct {
	Ev string `json:"ev"` // "live", "done" (a command finished), "result", "error"
	// Live carries the counters with "live" and "done" events.
	Live   *liveStats `json:"live,omitempty"`
	Result *Result    `json:"result,omitempty"`
	Error  string     `json:"error,omitempty"`
}

// ServeWorker runs one worker process: it reads its Config and commands
// from r and writes events to w, until the finish command or the end of r.
// The worker stops by itself when its Config's Deadline (plus a margin)
// passes, so a coordinator that dies leaves no worker behind.
func ServeWorker(ctx context.Context, r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	if !sc.Scan() {
		return fmt.Errorf("loadgen: worker: no config: %w", sc.Err())
	}
	var cfg Config
	if err := json.Unmarshal(sc.Bytes(), &cfg); err != nil {
		return fmt.Errorf("loadgen: worker: config: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline+time.Minute)
	defer cancel()
	m, err := newLocalMember(cfg)
	var mu sync.Mutex // guards enc
	enc := json.NewEncoder(w)
	send := func(ev event) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(ev)
	}
	if err != nil {
		send(event{Ev: "error", Error: err.Error()})
		return err
	}
	liveDone := make(chan struct{})
	defer close(liveDone)
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-liveDone:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				s := m.live()
				send(event{Ev: "live", Live: &s})
			}
		}
	}()
	cmds := make(chan string)
	go func() {
		defer close(cmds)
		for sc.Scan() {
			cmds <- sc.Text()
		}
	}()
	for {
		var cmd string
		select {
		case <-ctx.Done():
			cmd = cmdFinish
		case c, ok := <-cmds:
			cmd = c
			if !ok {
				cmd = cmdFinish
			}
		}
		var err error
		switch cmd {
		case cmdRamp:
			err = m.ramp(ctx)
		case cmdBegin:
			err = m.begin(ctx)
		case cmdAct:
			err = m.act(ctx)
		case cmdFinish:
			res, err := m.finish(context.WithoutCancel(ctx))
			if err != nil {
				send(event{Ev: "error", Error: err.Error()})
				return err
			}
			send(event{Ev: "result", Result: res})
			return nil
		default:
			err = fmt.Errorf("loadgen: worker: unknown command %q", cmd)
		}
		if err != nil {
			send(event{Ev: "error", Error: err.Error()})
			continue
		}
		s := m.live()
		send(event{Ev: "done", Live: &s})
	}
}

// workerMember drives one worker process.
type workerMember struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan event // everything but live events

	mu   sync.Mutex // guards last
	last liveStats
}

// startWorkers starts cfg.Procs workers, each with its share of the
// connections, connect rate and echo rate, and its own source addresses.
func startWorkers(ctx context.Context, cfg Config) ([]member, error) {
	exe := cfg.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("loadgen: find own executable: %w", err)
		}
	}
	var out []member
	first := cfg.TokenFirst
	for i := range cfg.Procs {
		wc := cfg
		wc.Procs, wc.Progress, wc.Ready = 1, nil, nil
		wc.Conns = share(cfg.Conns, i, cfg.Procs)
		wc.TokenFirst = first
		first += wc.Conns
		wc.ConnectConcurrency = max(1, cfg.ConnectConcurrency/cfg.Procs)
		if cfg.ConnectRate > 0 {
			wc.ConnectRate = cfg.ConnectRate / float64(cfg.Procs)
		}
		wc.Rate = cfg.Rate / float64(cfg.Procs)
		wc.SourceAddrs = workerAddrs(cfg.SourceAddrs, i, cfg.Procs)
		m, err := startWorker(ctx, exe, cfg.ExeArgs, wc)
		if err != nil {
			for _, o := range out {
				_, _ = o.finish(ctx)
			}
			return nil, fmt.Errorf("loadgen: worker %d: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func startWorker(ctx context.Context, exe string, args []string, cfg Config) (*workerMember, error) {
	line, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), WorkerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", exe, err)
	}
	m := &workerMember{cmd: cmd, stdin: stdin, events: make(chan event, 4)}
	go m.read(stdout)
	if _, err := stdin.Write(append(line, '\n')); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("send config: %w", err)
	}
	return m, nil
}

// read parses the worker's events until its stdout closes.
func (m *workerMember) read(r io.Reader) {
	defer close(m.events)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			m.events <- event{Ev: "error", Error: "bad event line: " + err.Error()}
			continue
		}
		if ev.Live != nil {
			m.mu.Lock()
			m.last = *ev.Live
			m.mu.Unlock()
		}
		if ev.Ev == "live" {
			continue
		}
		m.events <- ev
	}
}

// call sends cmd and waits for the event that answers it.
func (m *workerMember) call(ctx context.Context, cmd string) (event, error) {
	if _, err := io.WriteString(m.stdin, cmd+"\n"); err != nil {
		return event{}, fmt.Errorf("loadgen: worker %s: %w", cmd, err)
	}
	select {
	case ev, ok := <-m.events:
		if !ok {
			return event{}, fmt.Errorf("loadgen: worker exited during %s", cmd)
		}
		if ev.Ev == "error" {
			return ev, fmt.Errorf("loadgen: worker %s: %s", cmd, ev.Error)
		}
		return ev, nil
	case <-ctx.Done():
		return event{}, fmt.Errorf("loadgen: worker %s: %w", cmd, ctx.Err())
	}
}

func (m *workerMember) ramp(ctx context.Context) error {
	_, err := m.call(ctx, cmdRamp)
	return err
}

func (m *workerMember) begin(ctx context.Context) error {
	_, err := m.call(ctx, cmdBegin)
	return err
}

func (m *workerMember) act(ctx context.Context) error {
	_, err := m.call(ctx, cmdAct)
	return err
}

func (m *workerMember) live() liveStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// finish asks for the worker's result and waits for it to exit (killing it
// if it does not).
func (m *workerMember) finish(ctx context.Context) (*Result, error) {
	ev, err := m.call(ctx, cmdFinish)
	_ = m.stdin.Close()
	done := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-done
	}
	if err != nil {
		return nil, err
	}
	if ev.Result == nil {
		return nil, errors.New("loadgen: worker sent no result")
	}
	return ev.Result, nil
}
