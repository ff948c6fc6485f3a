package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// gencertOptions are the flags of `herald gencert`.
type gencertOptions struct {
	hosts    []string
	certPath string
	keyPath  string
	validFor time.Duration
	force    bool
}

// newGencertCmd returns `herald gencert`: a self-signed certificate for
// trying --tls-listen on a development machine. Browsers will not trust it
// unless told to; production wants a certificate from a real authority.
func newGencertCmd() *cobra.Command {
	o := gencertOptions{
		hosts:    []string{"localhost", "127.0.0.1", "::1"},
		certPath: "herald-cert.pem",
		keyPath:  "herald-key.pem",
		validFor: 30 * 24 * time.Hour,
	}
	cmd := &cobra.Command{
		Use:   "gencert",
		Short: "write a self-signed TLS certificate and key for development (--tls-cert, --tls-key)",
		Long: `Write a self-signed ECDSA P-256 certificate and its private key as PEM files,
for trying wss:// locally:

  herald gencert --host localhost,127.0.0.1
  herald serve --tls-listen :8443 --tls-cert herald-cert.pem --tls-key herald-key.pem

Clients must be told to trust it (a browser's certificate exception, Node's
NODE_EXTRA_CA_CERTS, a Go tls.Config RootCAs pool). Do not use it in
production.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := writeDevCert(o, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s (hosts %v, valid %s)\n", o.certPath, o.keyPath, o.hosts, o.validFor)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&o.hosts, "host", o.hosts, "DNS names and IP addresses the certificate is valid for")
	fs.StringVar(&o.certPath, "cert", o.certPath, "certificate output file")
	fs.StringVar(&o.keyPath, "key", o.keyPath, "private key output file (written with mode 0600)")
	fs.DurationVar(&o.validFor, "valid-for", o.validFor, "validity period")
	fs.BoolVar(&o.force, "force", o.force, "overwrite existing files")
	return cmd
}

// writeDevCert generates the key and certificate and writes both files.
func writeDevCert(o gencertOptions, now time.Time) error {
	if len(o.hosts) == 0 {
		return errors.New("gencert: at least one --host is required")
	}
	if o.validFor <= 0 {
		return errors.New("gencert: --valid-for must be positive")
	}
	certPEM, keyPEM, err := devCert(o.hosts, now, o.validFor)
	if err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !o.force {
		flags |= os.O_EXCL
	}
	if err := writeFile(o.keyPath, keyPEM, flags, 0o600); err != nil {
		return err
	}
	return writeFile(o.certPath, certPEM, flags, 0o644)
}

func writeFile(path string, data []byte, flags int, mode os.FileMode) error {
	f, err := os.OpenFile(path, flags, mode)
	if err != nil {
		return fmt.Errorf("gencert: %w (use --force to overwrite)", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("gencert: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("gencert: write %s: %w", path, err)
	}
	return nil
}

// devCert returns a self-signed certificate for hosts and its key, PEM
// encoded. The certificate is its own CA, so a client can trust it by
// adding it to a root pool.
func devCert(hosts []string, now time.Time, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("gencert: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("gencert: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"herald development"}, CommonName: hosts[0]},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("gencert: certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("gencert: key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
