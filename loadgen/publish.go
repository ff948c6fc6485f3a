package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/herald-push/herald/codec"
)

// publisher sends one payload to the server under test. Its methods are
// safe for concurrent use.
type publisher interface {
	publish(ctx context.Context, payload []byte) error
	close()
}

// httpPublisher POSTs each payload to a URL.
type httpPublisher struct {
	url    string
	client *http.Client
}

func newHTTPPublisher(url string, workers int) *httpPublisher {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableCompression: true}
	return &httpPublisher{url: url, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// statusError is a publish answered with a status other than 2xx.
type statusError int

func (e statusError) Error() string { return fmt.Sprintf("loadgen: publish: HTTP status %d", int(e)) }

func (p *httpPublisher) publish(ctx context.Context, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("loadgen: publish: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("loadgen: publish: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return statusError(resp.StatusCode)
	}
	return nil
}

func (p *httpPublisher) close() { p.client.CloseIdleConnections() }

// wsPublisher sends each payload, wrapped in a template, as a text message
// on its own WebSocket connection; what the server sends back is read and
// dropped by one goroutine.
type wsPublisher struct {
	mu             sync.Mutex // guards conn writes and buf
	conn           net.Conn
	prefix, suffix string
	buf            []byte
	read           chan struct{} // closed when the server's side ends (EOF or error)
}

func newWSPublisher(ctx context.Context, rawURL, template string, headers []string) (*wsPublisher, error) {
	cfg := Config{URL: rawURL}
	hostport, host, uri, err := cfg.target()
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("loadgen: publisher: dial: %w", err)
	}
	if err := clientHandshake(conn, host, uri, headers, 10*time.Second); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("loadgen: publisher: %w", err)
	}
	prefix, suffix, _ := strings.Cut(template, "{payload}")
	p := &wsPublisher{conn: conn, prefix: prefix, suffix: suffix, read: make(chan struct{})}
	go func() {
		defer close(p.read)
		_, _ = io.Copy(io.Discard, conn)
	}()
	return p, nil
}

// clientHandshake performs the opening handshake on a blocking conn. Bytes
// after the response header are dropped (a reader that cares about them
// must not use it).
func clientHandshake(conn net.Conn, host, uri string, headers []string, timeout time.Duration) error {
	key, err := codec.NewClientKey(nil)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	if _, err := conn.Write(codec.AppendClientRequest(nil, host, uri, key, headers...)); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	br := bufio.NewReaderSize(conn, 4096)
	var head []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		head = append(head, b)
		if !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
			continue
		}
		if _, err := codec.ParseResponse(head, key); err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		return nil
	}
}

func (p *wsPublisher) publish(_ context.Context, payload []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	msg := append(append(append(make([]byte, 0, len(p.prefix)+len(payload)+len(p.suffix)), p.prefix...), payload...), p.suffix...)
	p.buf = codec.AppendMaskedFrame(p.buf[:0], codec.OpText, true, msg, maskKey())
	if _, err := p.conn.Write(p.buf); err != nil {
		return fmt.Errorf("loadgen: publish: %w", err)
	}
	return nil
}

// publisherLinger bounds how long close waits for the server to end the
// publishing connection after the publisher's FIN.
const publisherLinger = 5 * time.Second

// close ends the publishing connection without losing its last messages:
// it shuts the write side and waits (up to publisherLinger) for the server
// to close its side. Closing at once, with what the server sent still
// unread here, would send a reset, and a reset makes the server's kernel
// drop the messages it has not read yet.
func (p *wsPublisher) close() {
	if cw, ok := p.conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		t := time.NewTimer(publisherLinger)
		select {
		case <-p.read:
		case <-t.C:
		}
		t.Stop()
	}
	_ = p.conn.Close()
}

// pubStats collects what publishing goroutines did; safe for concurrent use.
type pubStats struct {
	mu        sync.Mutex
	published int64
	failures  map[string]int64
	latency   Hist
	firstSend int64
	// failedSeqs are the seqs whose publish failed (recorded by
	// recordSeq): the recovery scenarios expect every other seq below
	// published + len(failedSeqs).
	failedSeqs []uint64
}

// recordSeq is record for message seq, whose failure it also keeps.
func (s *pubStats) recordSeq(began time.Time, seq uint64, err error) {
	s.record(began, err)
	if err != nil {
		s.mu.Lock()
		s.failedSeqs = append(s.failedSeqs, seq)
		s.mu.Unlock()
	}
}

func (s *pubStats) record(began time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstSend == 0 {
		s.firstSend = began.UnixNano()
	}
	if err != nil {
		var se statusError
		c := cause(err)
		if errors.As(err, &se) {
			c = fmt.Sprintf("http-%d", int(se))
		}
		s.failures = addCounts(s.failures, map[string]int64{c: 1})
		return
	}
	s.published++
	s.latency.Record(time.Since(began))
}

// merge adds o's counts to s.
func (s *pubStats) merge(o *pubStats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published += o.published
	s.failures = addCounts(s.failures, o.failures)
	s.latency.Merge(o.latency)
	s.failedSeqs = append(s.failedSeqs, o.failedSeqs...)
	if s.firstSend == 0 {
		s.firstSend = o.firstSend
	}
}

func (s *pubStats) into(r *Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Published, r.PublishFailures, r.PublishLatency, r.FirstSendNano = s.published, s.failures, s.latency, s.firstSend
}

// broadcast publishes count messages interval apart, numbered from base
// and stamped with their actual send time, one at a time.
func broadcast(ctx context.Context, p publisher, base uint64, count int, interval time.Duration, size int, s *pubStats) {
	start := time.Now()
	var buf []byte
	for seq := range count {
		if ctx.Err() != nil {
			return
		}
		began := time.Now()
		buf = appendPayload(buf[:0], began.UnixNano(), base+uint64(seq), size)
		s.record(began, p.publish(ctx, buf))
		if seq < count-1 {
			sleepCtx(ctx, time.Until(start.Add(time.Duration(seq+1)*interval)))
		}
	}
}

// sustained publishes rate messages per second for d on an open-loop
// schedule: message i is due at start + i/rate and carries that time, even
// when the workers fall behind, so their delay counts as latency.
func sustained(ctx context.Context, p publisher, rate float64, d time.Duration, workers, size int, s *pubStats) {
	type job struct {
		seq uint64
		due int64
	}
	jobs := make(chan job, 4096)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var buf []byte
			for j := range jobs {
				buf = appendPayload(buf[:0], j.due, j.seq, size)
				s.recordSeq(time.Unix(0, j.due), j.seq, p.publish(ctx, buf))
			}
		})
	}
	start := time.Now()
	total := int(rate * d.Seconds())
	pace(ctx, total, rate, start, func(i int) {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		select {
		case jobs <- job{uint64(i), due.UnixNano()}:
		case <-ctx.Done():
		}
	})
	close(jobs)
	wg.Wait()
}
