//go:build !linux

package poller

import "errors"

// platformBackend is the backend an empty Config.Backend means: gnet,
// which runs on kqueue here.
const platformBackend = BackendGnet

// errNoEpoll is returned for Config.Backend "epoll" off Linux.
var errNoEpoll = errors.New("poller: the epoll backend needs Linux")

func newEpollServer(*core) (serverBackend, error) { return nil, errNoEpoll }

func newEpollClient(*core) (clientBackend, error) { return nil, errNoEpoll }
