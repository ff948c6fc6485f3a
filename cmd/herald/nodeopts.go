package main

import "github.com/herald-push/herald"

// nodeOptions returns the library options `herald serve` adds to a node
// (the demo page and browser client, when built in).
func nodeOptions(cfg herald.Config) []herald.Option {
	var opts []herald.Option
	for _, f := range nodeOptionHooks {
		opts = append(opts, f(cfg)...)
	}
	return opts
}

// nodeOptionHooks are filled by other files of this package.
var nodeOptionHooks []func(herald.Config) []herald.Option
