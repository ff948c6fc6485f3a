package main

import (
	"github.com/herald-push/herald"
	clientjs "github.com/herald-push/herald/client/js"
	"github.com/herald-push/herald/demo"
)

// The demo (the shared counter at / on the API listener) comes with
// `herald serve` unless --demo=false or --echo; /herald.js is served
// whenever the push protocol runs, so pages of your own can load it.
func init() {
	nodeOptionHooks = append(nodeOptionHooks, func(cfg herald.Config) []herald.Option {
		switch {
		case cfg.Echo:
			return nil
		case cfg.Demo:
			return demo.Options(cfg)
		default:
			return []herald.Option{herald.WithClientScript(clientjs.Handler())}
		}
	})
}
