package testutil

import "encoding/json"

// Msg is any server → client message of herald's push protocol
// (docs/protocol.md), as the suites decode it: the fields of every op,
// each left zero where an op has none.
type Msg struct {
	Op        string          `json:"op"`
	Channel   string          `json:"channel"`
	Offset    uint64          `json:"offset"`
	Epoch     string          `json:"epoch"`
	Recovered *bool           `json:"recovered"`
	Data      json.RawMessage `json:"data"`
	// User is a presence event's member; Count a presence reply's.
	User  string `json:"user"`
	Count int    `json:"count"`
	// Code and Message are an error's.
	Code    string `json:"code"`
	Message string `json:"message"`
	// ID echoes a command's id.
	ID json.RawMessage `json:"id"`
	// Presence is the member list of a presence channel's subscribed
	// reply.
	Presence *Members `json:"presence"`
}

// Members is a presence channel's member count and the members listed.
type Members struct {
	Count int      `json:"count"`
	Users []string `json:"users"`
}
