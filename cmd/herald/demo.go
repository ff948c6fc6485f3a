package main

import (
	"github.com/herald-push/herald"
	clientjs "github.com/herald-push/herald/client/js"
	"github.com/herald-push/herald/demo"
)

// withHooks returns cfg with the hooks `herald serve` runs a node with. The
// demo (the shared counter at / on the API listener) comes unless
// --demo=false or --echo; the returned demo, when not nil, is to be
// attached to the node built from the config. /herald.js is served
// whenever the push protocol runs, so pages of your own can load it.
func withHooks(cfg herald.Config) (herald.Config, *demo.Demo) {
	switch {
	case cfg.Echo:
		return cfg, nil
	case cfg.Demo:
		d := demo.Configure(&cfg)
		return cfg, d
	default:
		cfg.ClientScript = clientjs.Handler()
		return cfg, nil
	}
}
