package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// AddPublicKeyFile reads a PEM file and adds every public key in it to c
// (see [Config.AddPublicKeyPEM]). It is meant for start-up, not for the
// event loops: it reads the file system.
func (c *Config) AddPublicKeyFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("auth: read public key: %w", err)
	}
	if err := c.AddPublicKeyPEM(data); err != nil {
		return fmt.Errorf("%w (in %s)", err, path)
	}
	return nil
}

// AddPublicKeyPEM adds every public key in the PEM data to RSAPublicKeys or
// ECDSAPublicKeys. It understands "PUBLIC KEY" (PKIX, RSA or ECDSA),
// "RSA PUBLIC KEY" (PKCS #1) and "CERTIFICATE" blocks (the certificate's
// key is used; the certificate itself is not checked). A private key block
// is refused, so that signing keys are not spread to servers by mistake.
func (c *Config) AddPublicKeyPEM(data []byte) error {
	found := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			return fmt.Errorf("auth: PEM block %q is a private key; give the server the public key", block.Type)
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("auth: parse PEM block %q: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PublicKey:
			c.RSAPublicKeys = append(c.RSAPublicKeys, k)
		case *ecdsa.PublicKey:
			c.ECDSAPublicKeys = append(c.ECDSAPublicKeys, k)
		default:
			return fmt.Errorf("auth: PEM block %q: unsupported key type %T (want RSA or ECDSA)", block.Type, key)
		}
		found++
	}
	if found == 0 {
		return errors.New("auth: no public key found in PEM data")
	}
	return nil
}

// ParsePrivateKeyPEM returns the first RSA or ECDSA private key in the PEM
// data, from a "PRIVATE KEY" (PKCS #8), "RSA PRIVATE KEY" (PKCS #1) or
// "EC PRIVATE KEY" (SEC 1) block; other blocks (such as "EC PARAMETERS")
// are skipped. The result can be passed to [Sign].
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("auth: no private key found in PEM data")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("auth: parse PEM block %q: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return nil, errors.New("auth: Ed25519 keys are not supported (want RSA or ECDSA)")
		default:
			return nil, fmt.Errorf("auth: unsupported private key type %T (want RSA or ECDSA)", key)
		}
	}
}
