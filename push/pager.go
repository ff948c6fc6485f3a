package push

import (
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/server"
)

// A recovery backlog may be larger than a connection's output budget (a
// client that missed many messages). It is sent in pages: what fits now,
// the rest once the client has read it. Meanwhile the session stays
// subscribed as far as the app, Interest and MaxSubscriptions go, but is
// unsubscribed in the hub, so live messages of the channel wait in history
// rather than in the session's queue. Each page subscribes again with the
// position of the last message sent: the hub then returns the next
// messages and, when they all fit, resumes live delivery exactly after
// them, once and in order. If history lost messages meanwhile, the client
// is told recovered=false, as for any subscription that cannot recover.

// pager is one channel's recovery still to send to a session.
type pager struct {
	channel string
	cursor  hub.Position // the last message sent
}

// sendBacklog writes backlog (the messages after since, oldest first) to
// s, as far as its output budget takes them, and pages the rest. It
// reports false when s was not subscribed in the hub because the backlog
// waits. s's loop only.
func (a *App) sendBacklog(s *Session, ch string, backlog []*hub.Message) (live bool) {
	c := s.conn
	for i, m := range backlog {
		if s.writeMessage(m) {
			continue
		}
		if !c.Open() {
			return true
		}
		if c.Buffered() == 0 {
			// Even an empty budget cannot take it: the message can never
			// be delivered (no frame-size check at publish).
			a.overflow(c)
			return true
		}
		cursor := hub.Position{Offset: m.Offset - 1, Epoch: m.Epoch}
		if i > 0 {
			cursor.Offset = backlog[i-1].Offset
		}
		a.o.Hub.Unsubscribe(c.Loop(), ch, s)
		a.pageLater(s, ch, cursor)
		return false
	}
	return true
}

// pageLater records the rest of ch's backlog and arranges for it to be
// sent: right after this entry point's writes are flushed if the kernel
// takes them all, else once the output has drained (OnWritable). s's loop
// only.
func (a *App) pageLater(s *Session, ch string, cursor hub.Position) {
	pl := &a.loops[s.conn.Loop().Index()]
	if pl.pagers == nil {
		pl.pagers = map[*Session][]*pager{}
	}
	pl.pagers[s] = append(pl.pagers[s], &pager{channel: ch, cursor: cursor})
	s.flags |= flagPaging
	a.paged.Add(1)
	c := s.conn
	_ = c.Loop().Run(func() {
		if !c.Open() {
			return
		}
		// With bytes still waiting in the outbound buffer, the poller
		// calls OnWritable once the kernel has taken them.
		if c.Buffered() == 0 {
			a.OnWritable(c)
		}
	})
}

// OnWritable continues the paged recovery backlogs of c's session once its
// output has drained. It runs on c's loop.
func (a *App) OnWritable(c *server.Conn) {
	s, _ := c.App.(*Session)
	if s == nil || s.flags&flagPaging == 0 || !c.Open() {
		return
	}
	pl := &a.loops[c.Loop().Index()]
	ps := pl.pagers[s]
	delete(pl.pagers, s)
	s.flags &^= flagPaging
	for _, p := range ps {
		a.page(s, p)
	}
}

// page sends the next messages of p's backlog. s's loop only.
func (a *App) page(s *Session, p *pager) {
	c := s.conn
	if !c.Open() {
		return
	}
	pos, backlog, recovered, err := a.o.Hub.Subscribe(c.Loop(), p.channel, s, &p.cursor)
	if err != nil {
		// The channel was forgotten and the node is full: give up the
		// subscription as a subscribe would have been refused.
		a.removeChannel(s, p.channel)
		a.release(p.channel)
		a.replyError(s, nil, errLimit, "too many channels on this server", p.channel)
		return
	}
	if !recovered {
		// History moved past the cursor meanwhile: say so, as a
		// subscription that cannot recover does, and go on live.
		if s.streaming() {
			a.streamNotRecovered(s, p.channel, pos)
		} else if !s.raw {
			a.reply(s, nil, map[string]any{"op": "subscribed", "channel": p.channel, "offset": pos.Offset, "epoch": pos.Epoch, "recovered": false})
		}
		return
	}
	a.sendBacklog(s, p.channel, backlog)
}

// dropPager forgets a paged backlog of ch, when s unsubscribes or
// resubscribes. s's loop only.
func (a *App) dropPager(s *Session, ch string) {
	if s.flags&flagPaging == 0 {
		return
	}
	pl := &a.loops[s.conn.Loop().Index()]
	ps := pl.pagers[s]
	for i, p := range ps {
		if p.channel == ch {
			ps = append(ps[:i], ps[i+1:]...)
			break
		}
	}
	if len(ps) == 0 {
		delete(pl.pagers, s)
		s.flags &^= flagPaging
		return
	}
	pl.pagers[s] = ps
}
