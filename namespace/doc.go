// Package namespace owns herald's channel namespaces: a channel named
// "ns:rest" takes the settings of namespace "ns" from the configuration
// (history size, age and bytes, recovery, who may subscribe and publish,
// the largest message). Channels without a ':' and the personal "user:"
// channels keep the node's top-level settings.
//
// Where to start: New builds a Table from the configured namespaces
// (Config, the "namespaces" list of the config file) and validates them;
// Table.Lookup finds a channel's Namespace, or refuses a channel whose
// prefix names no configured namespace (ErrUnknown) once any is
// configured. Table.HubOptions is the hub's hook (hub.Config.Options).
//
// # Permissions
//
// A namespace can only take rights away, never grant them: a client may
// subscribe to or publish on a channel when its token's claims (or, for
// an anonymous client, the node's anonymous patterns) allow it and the
// channel's namespace allows it too. anonymous_subscribe (default true)
// and anonymous_publish (default false) gate anonymous clients,
// client_publish (default true) gates every client's pub. So anonymous
// publishing in a namespace needs both a pattern and the namespace's
// explicit anonymous_publish; the API's publishes are not affected.
//
// A Table is immutable once built and safe for concurrent use; Lookup does
// not allocate unless it fails.
package namespace
