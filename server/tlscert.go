package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Certificate rotation. The TLS listener serves the pair held in certs
// (tls.Config.GetCertificate reads it for every handshake), so a new pair
// loaded from TLSCert and TLSKey (Server.ReloadTLS, on SIGHUP in the
// command) applies to the handshakes that start after it; connections
// already open keep the keys they negotiated and are not touched. A pair
// that does not load (a missing or unreadable file, a key that does not
// match the certificate, a certificate that has expired or is not yet
// valid) is refused and the one in use kept.

// certStore is the certificate pair new TLS handshakes get.
type certStore struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
	mu                sync.Mutex // serializes reloads
	reloads           atomic.Uint64
	reloadErrors      atomic.Uint64
}

// loadPair reads and checks the pair in certFile and keyFile.
func loadPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s and %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: parse %s: %w", certFile, err)
		}
	}
	if now.After(cert.Leaf.NotAfter) {
		return nil, fmt.Errorf("tls: %s expired on %s", certFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(cert.Leaf.NotBefore) {
		return nil, fmt.Errorf("tls: %s is not valid before %s", certFile, cert.Leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &cert, nil
}

// newCertStore loads the first pair; an error here stops the server from
// starting.
func newCertStore(certFile, keyFile string) (*certStore, error) {
	c, err := loadPair(certFile, keyFile, time.Now())
	if err != nil {
		return nil, err
	}
	cs := &certStore{certFile: certFile, keyFile: keyFile}
	cs.cur.Store(c)
	return cs, nil
}

// reload replaces the pair with the one now in the files, or keeps the
// current one and returns why not.
func (cs *certStore) reload() (*tls.Certificate, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c, err := loadPair(cs.certFile, cs.keyFile, time.Now())
	if err != nil {
		cs.reloadErrors.Add(1)
		return nil, err
	}
	cs.cur.Store(c)
	cs.reloads.Add(1)
	return c, nil
}

// get is the tls.Config.GetCertificate of the listener.
func (cs *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return cs.cur.Load(), nil
}

// ErrNoTLS is returned by ReloadTLS on a server without a TLS listener.
var ErrNoTLS = errors.New("no TLS listener")

// ReloadTLS re-reads the TLS certificate and key files: handshakes from
// now on get the new pair, open connections stay as they are. When the
// new pair does not load, the current one is kept and the error says
// why. Either outcome is logged and counted (TLSStats.CertReloads,
// CertReloadErrors). Safe from any goroutine.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return ErrNoTLS
	}
	c, err := s.tls.certs.reload()
	if err != nil {
		s.log.Error("tls certificate reload refused; keeping the current one", "err", err)
		return err
	}
	s.log.Info("tls certificate reloaded", "cert", s.cfg.TLSCert, "subject", c.Leaf.Subject.String(),
		"serial", c.Leaf.SerialNumber.String(), "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}
