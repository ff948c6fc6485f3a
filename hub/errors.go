package hub

import (
	"errors"
	"fmt"
)

// Errors returned by Publish and PublishAt, wrapped with the channel's name;
// test for them with errors.Is.
var (
	// ErrInvalidChannel reports a channel name that ValidChannel refuses.
	ErrInvalidChannel = errors.New("hub: invalid channel name")
	// ErrTooLarge reports a payload over Config.MaxPayload, or one whose
	// frames the Encoder refused as larger than a subscriber's output
	// budget (no subscriber could be sent it).
	ErrTooLarge = errors.New("hub: payload too large")
	// ErrChannelLimit reports a client's subscription or publish to a new
	// channel while clients have created Config.MaxChannels channels: the
	// client may retry later.
	ErrChannelLimit = errors.New("hub: too many channels")
	// ErrStale reports a PublishAt whose offset the channel already has in
	// that epoch: a duplicate from the broker, dropped.
	ErrStale = errors.New("hub: offset already published")
	// ErrBadPosition reports a PublishAt with offset 0 or an empty epoch.
	ErrBadPosition = errors.New("hub: invalid position")
)

// ChannelError is a refusal a client can fix, of a channel name
// (ErrInvalidChannel) or a payload's size (ErrTooLarge): the call, the
// channel and, for a size, the payload's and the limit. Error says it
// with the hub's context, for logs; Reason says it to the client, once.
type ChannelError struct {
	// Op is the call refused: "publish to", "reserve", "history of"...
	Op string
	// Channel is the channel's name; the messages quote its first 300
	// bytes.
	Channel string
	// Size and Limit are the payload's size and the limit it passed, in
	// bytes (ErrTooLarge).
	Size, Limit int
	// Err is ErrInvalidChannel or ErrTooLarge.
	Err error
}

// invalidChannel is a ChannelError for ErrInvalidChannel.
func invalidChannel(op, channel string) error {
	return &ChannelError{Op: op, Channel: channel, Err: ErrInvalidChannel}
}

func (e *ChannelError) Error() string {
	if e.Err == ErrTooLarge {
		return fmt.Sprintf("hub: %s %.300q: %d bytes (limit %d): %v", e.Op, e.Channel, e.Size, e.Limit, e.Err)
	}
	return fmt.Sprintf("hub: %s %.300q: %v", e.Op, e.Channel, e.Err)
}

// Unwrap is Err.
func (e *ChannelError) Unwrap() error { return e.Err }

// Reason is what is wrong, as an API answers it: `invalid channel name
// "a b"`, or `message of 300 bytes over the limit of 100 bytes (channel
// "c")`.
func (e *ChannelError) Reason() string {
	if e.Err == ErrTooLarge {
		return fmt.Sprintf("message of %d bytes over the limit of %d bytes (channel %.300q)", e.Size, e.Limit, e.Channel)
	}
	return fmt.Sprintf("invalid channel name %.300q", e.Channel)
}
