//go:build !linux

package poller

import "errors"

// defaultBackend is the backend used when neither Config.Backend nor the
// environment names one: gnet, which runs on kqueue here.
const defaultBackend = BackendGnet

// errNoEpoll is returned for Config.Backend "epoll" off Linux.
var errNoEpoll = errors.New("poller: the epoll backend needs Linux")

func newEpollServer(*core) (serverBackend, error) { return nil, errNoEpoll }

func newEpollClient(*core) (clientBackend, error) { return nil, errNoEpoll }
