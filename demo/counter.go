package demo

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/push"
)

// counter is the shared counter. Its handler runs on worker goroutines,
// for many connections at once, so value is guarded by mu; the publish
// happens under mu too, so that the channel's offsets order the values.
type counter struct {
	node atomic.Pointer[herald.Node]

	mu    sync.Mutex
	value int64
}

func newCounter() *counter { return &counter{} }

// request is an application message from the page.
type request struct {
	Action string `json:"action"`
}

// handle is the node's herald.Handler: it runs on the worker pool.
func (c *counter) handle(s *push.Session, data []byte) {
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		s.Send(errorReply(fmt.Errorf("demo: message is not {\"action\":...}: %w", err)))
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	value, changed, err := c.apply(req.Action)
	if err != nil {
		s.Send(errorReply(err))
		return
	}
	body := valueJSON(value)
	if !changed {
		s.Send(body)
		return
	}
	n := c.node.Load()
	if n == nil {
		s.Send(errorReply(fmt.Errorf("demo: counter is not attached to a node")))
		return
	}
	if _, err := n.Publish(CounterChannel, body); err != nil {
		s.Send(errorReply(fmt.Errorf("demo: publish to %s: %w", CounterChannel, err)))
	}
}

// apply runs one action. Lock should be held.
func (c *counter) apply(action string) (value int64, changed bool, err error) {
	switch action {
	case "incr":
		c.value++
		return c.value, true, nil
	case "decr":
		c.value--
		return c.value, true, nil
	case "get":
		return c.value, false, nil
	}
	return c.value, false, fmt.Errorf("demo: unknown action %q (want incr, decr or get)", action)
}

// valueJSON is the message the counter publishes: {"value":N}.
func valueJSON(v int64) []byte {
	return append(strconv.AppendInt([]byte(`{"value":`), v, 10), '}')
}

func errorReply(err error) []byte {
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	return b
}
