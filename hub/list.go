package hub

import (
	"container/heap"
	"strings"
)

// ListOptions select the channels List returns.
type ListOptions struct {
	// Prefix keeps the channels whose names start with it ("" keeps all).
	Prefix string
	// After keeps the channels whose names sort after it: the cursor of
	// the next page is the last name of the previous one.
	After string
	// Limit is the most channels returned (at least 1).
	Limit int
	// Skip leaves out the channels for which it returns true (nil: none).
	Skip func(name string) bool
}

// List returns, sorted by name, the first o.Limit channels the hub knows
// that match o, and whether more matched. It keeps only o.Limit names while
// it walks the registry (a bounded heap), so a listing costs memory for the
// page it returns, not for every channel of the node. Safe for concurrent
// use; each entry is a consistent snapshot of its channel.
func (h *Hub) List(o ListOptions) ([]ChannelInfo, bool) {
	limit := max(o.Limit, 1)
	page := make(nameHeap, 0, limit+1)
	more := false
	h.mu.RLock()
	for name := range h.chans {
		if !strings.HasPrefix(name, o.Prefix) || name <= o.After || (o.Skip != nil && o.Skip(name)) {
			continue
		}
		if len(page) == limit {
			more = true
			if name >= page[0] {
				continue // sorts after every name kept
			}
			heap.Pop(&page)
		}
		heap.Push(&page, name)
	}
	h.mu.RUnlock()
	names := make([]string, len(page))
	for i := len(page) - 1; i >= 0; i-- {
		names[i] = heap.Pop(&page).(string)
	}
	out := make([]ChannelInfo, 0, len(names))
	for _, name := range names {
		if info, ok := h.Info(name); ok {
			out = append(out, info)
		}
	}
	return out, more
}

// nameHeap is a max-heap of channel names: its root is the name that sorts
// last, the first to leave when a smaller one arrives.
type nameHeap []string

func (n nameHeap) Len() int           { return len(n) }
func (n nameHeap) Less(i, j int) bool { return n[i] > n[j] }
func (n nameHeap) Swap(i, j int)      { n[i], n[j] = n[j], n[i] }
func (n *nameHeap) Push(x any)        { *n = append(*n, x.(string)) }
func (n *nameHeap) Pop() any {
	old := *n
	x := old[len(old)-1]
	*n = old[:len(old)-1]
	return x
}
