package herald

import (
	"fmt"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/namespace"
)

// presenceChannels is push.Options.Presence for cfg: a namespace's
// channels have presence with its "presence" option, the channels
// outside namespaces where presence_channels match them. Nil when no
// channel can have presence, so a node without it pays nothing.
func presenceChannels(cfg Config, t *namespace.Table) (func(string) bool, error) {
	pats, err := auth.CompilePatterns(cfg.PresenceChannels)
	if err != nil {
		return nil, fmt.Errorf("presence_channels: %w", err)
	}
	on := len(cfg.PresenceChannels) > 0
	for _, ns := range t.Namespaces() {
		on = on || ns.Presence()
	}
	if !on {
		return nil, nil
	}
	return func(ch string) bool {
		ns, err := t.Lookup(ch)
		if err != nil {
			return false
		}
		if ns.Name != "" {
			return ns.Presence()
		}
		return pats.Match(ch)
	}, nil
}
